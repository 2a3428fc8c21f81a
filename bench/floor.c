/*
 * benchfloor: the floor for vmtrace's benchmarks.
 *
 * clock() reads CLOCK_MONOTONIC and returns nanoseconds as a Lua integer;
 * empty() does nothing. Two calls of either from a Lua loop are the least a
 * span start + finish can cost: the price of crossing from Lua into C and,
 * for clock(), of reading the clock. The plain Lua collector in plain.lua
 * also uses clock() as its time source, since a Lua user has nothing better.
 *
 * hook(on) installs (or removes) a call/return hook that does nothing on the
 * running thread: the floor of vmtrace.auto's call hook (bench/auto.lua).
 * clock_cost(n) is the nanoseconds one CLOCK_MONOTONIC reading takes, the
 * best of 5 loops of n readings (a traced call reads it twice).
 *
 * Build: gcc -O2 -shared -fPIC -I/usr/include/lua5.4 bench/floor.c -o build/benchfloor.so
 */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include <lua.h>
#include <lauxlib.h>

static int floor_clock(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000000000 + (lua_Integer)ts.tv_nsec);
    return 1;
}

static int floor_empty(lua_State *L) {
    (void)L;
    return 0;
}

static int floor_clock_cost(lua_State *L) {
    lua_Integer n = luaL_optinteger(L, 1, 1000000), i;
    double best = 1e30;
    int round;
    struct timespec a, b, t;
    for (round = 0; round < 5; round++) {
        double ns;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (i = 0; i < n; i++) clock_gettime(CLOCK_MONOTONIC, &t);
        clock_gettime(CLOCK_MONOTONIC, &b);
        ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n;
        if (ns < best) best = ns;
    }
    lua_pushnumber(L, best);
    return 1;
}

static void empty_hook(lua_State *L, lua_Debug *ar) {
    (void)L;
    (void)ar;
}

static int floor_hook(lua_State *L) {
    if (lua_toboolean(L, 1)) lua_sethook(L, empty_hook, LUA_MASKCALL | LUA_MASKRET, 0);
    else lua_sethook(L, NULL, 0, 0);
    return 0;
}

static const luaL_Reg funcs[] = {
    {"clock", floor_clock},
    {"empty", floor_empty},
    {"hook", floor_hook},
    {"clock_cost", floor_clock_cost},
    {NULL, NULL}
};

__attribute__((visibility("default"))) int luaopen_benchfloor(lua_State *L);
__attribute__((visibility("default"))) int luaopen_benchfloor(lua_State *L) {
    luaL_newlib(L, funcs);
    return 1;
}
