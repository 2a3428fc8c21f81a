/*
 * fork_host.c: a host that embeds Lua and gives scripts fork() and wait(),
 * which stock Lua lacks: the exporter's behaviour across fork() is tested
 * with it (spec/16). Usage: fork_host script.lua [args...]; the script's
 * arg table is set as lua5.4 sets it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lauxlib.h"
#include "lualib.h"

int luaopen_vmtrace_core(lua_State *L);

static int l_fork(lua_State *L) {
  pid_t pid;
  fflush(NULL);
  pid = fork();
  if (pid < 0) return luaL_error(L, "fork failed");
  lua_pushinteger(L, pid);
  return 1;
}

static int l_wait(lua_State *L) {
  int status = 0;
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  if (waitpid(pid, &status, 0) < 0) return luaL_error(L, "waitpid failed");
  lua_pushinteger(L, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L;
  int i, rc;
  if (argc < 2) {
    fprintf(stderr, "usage: fork_host script.lua [args...]\n");
    return 2;
  }
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "vmtrace.core", luaopen_vmtrace_core, 0);
  lua_pop(L, 1);
  lua_register(L, "fork", l_fork);
  lua_register(L, "wait", l_wait);
  lua_createtable(L, argc, 0);
  for (i = 1; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 1);
  }
  lua_setglobal(L, "arg");
  rc = luaL_dofile(L, argv[1]);
  if (rc != LUA_OK) fprintf(stderr, "fork_host: %s\n", lua_tostring(L, -1));
  lua_close(L);
  return rc == LUA_OK ? 0 : 1;
}
