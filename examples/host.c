/* examples/host.c: a host that embeds Lua records a span from C into the
 * collector its scripts see, and a script reads it back.
 *   cc -std=c99 -Icsrc -I/usr/include/lua5.4 examples/host.c build/libvmtrace.a \
 *      -llua5.4 -lcjson -luuid -lm -o host && ./host
 */
#include <stdio.h>

#include "lauxlib.h"
#include "lualib.h"
#include "vmtrace.h"

int luaopen_vmtrace_core(lua_State *L);

int main(void) {
  lua_State *L = luaL_newstate();
  vt_collector *c;
  vt_vb bytes;
  vt_id id;
  luaL_openlibs(L);
  luaL_requiref(L, "vmtrace.core", luaopen_vmtrace_core, 0); /* what require finds */
  lua_pop(L, 1);
  c = vt_lua_collector(L);
  vt_collector_set_enabled(c, 1);

  id = vt_collector_start(c, NULL, VT_TOOL_CALL, "fetch", 5, NULL);
  vt_vb_init(&bytes);
  vt_vb_int(&bytes, 512); /* metadata values are built, then copied by the core */
  vt_collector_set_metadata(c, id, "bytes", 5, vt_vb_value(&bytes), 0);
  vt_vb_free(&bytes);
  vt_collector_finish(c, id, NULL);

  if (luaL_dostring(L, "print(require('vmtrace.core').summary())") != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  lua_close(L);
  return 0;
}
