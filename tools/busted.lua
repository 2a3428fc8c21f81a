-- Runs busted inside this interpreter (lua5.4 tools/busted.lua ARGS), so
-- that valgrind and a preloaded sanitizer runtime see the specs themselves
-- (Debian's busted script re-executes itself under --lua otherwise).
require "busted.runner"({ standalone = false })
