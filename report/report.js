// report.js: the vmtrace report viewer. It decodes the trace data embedded in
// the page (report/FORMAT.md) into typed arrays, derives the tree, rows, self
// times and totals in linear passes, and renders the header, the timeline
// with its overview strip, the details panel, the tree, the LLM view and
// search. Text from the trace reaches the page only through textContent and
// canvas fillText, and the page makes no request of any kind.
(function () {
  "use strict";

  // ---- constants ---------------------------------------------------------------

  var KIND_COLORS = {
    pipeline: "#64748b", fn_call: "#5b9bf0", llm_call: "#9b5de5", tool_call: "#f28a30",
    import: "#94a3b8", parallel: "#14b8a6", spawn: "#2dd4bf", step: "#3fb35f",
    vm_setup: "#8b7f76", suspension: "#e0473f", resume: "#84cc16", drain: "#0ea5e9",
    drain_decision: "#0284c7", pool_submit: "#d4a20b", pool_dequeue: "#b7860b",
    channel_emit: "#e85a9b", channel_match: "#c2407a", user_timing: "#06b6d4",
    model_route: "#dc2626", tool_mount: "#ea580c", deferred_tool_load: "#7c3aed"
  };
  var MARKER_KINDS = { model_route: 1, tool_mount: 1, deferred_tool_load: 1 };
  var USAGE_KEYS = ["model", "provider", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd"];
  var TREE_ROW_H = 20;

  // ---- small helpers -----------------------------------------------------------

  /** An element with a class and text; text always goes through textContent. */
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }
  function fmtInt(n) {
    return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  function fmtCost(c) {
    return "$" + (c >= 100 ? c.toFixed(2) : c.toFixed(4));
  }
  function fmtDur(ns) {
    if (!(ns > 0)) return ns === 0 ? "0" : "–";
    if (ns < 1e3) return ns.toFixed(0) + " ns";
    if (ns < 1e6) return (ns / 1e3).toFixed(ns < 1e4 ? 2 : 1) + " µs";
    if (ns < 1e9) return (ns / 1e6).toFixed(ns < 1e7 ? 3 : 2) + " ms";
    return (ns / 1e9).toFixed(3) + " s";
  }
  function fmtWall(ms) {
    if (!isFinite(ms)) return "–";
    return new Date(ms).toISOString().replace("T", " ").replace(/Z$/, " UTC");
  }
  /** A number from a metadata value: plain numbers, or exact big integers. */
  function num(v) {
    if (typeof v === "number") return v;
    if (v && typeof v === "object" && typeof JSON.isRawJSON === "function" && JSON.isRawJSON(v)) return Number(v.rawJSON);
    return NaN;
  }
  function lowerBoundF64(arr, lo, hi, x) {
    while (lo < hi) {
      var mid = (lo + hi) >>> 1;
      if (arr[mid] < x) lo = mid + 1; else hi = mid;
    }
    return lo;
  }
  function hexToRgb(h) {
    var v = parseInt(h.slice(1), 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  }
  function kindColor(name) {
    if (KIND_COLORS[name]) return KIND_COLORS[name];
    var h = 0;
    for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    return "hsl(" + (h % 360) + ",55%,55%)";
  }

  // ---- reading the data ----------------------------------------------------------

  /**
   * Parses the data. Integers past 2^53 (64-bit metadata values) keep their
   * digits: each such number token is first turned into a marked string, and
   * after a plain JSON.parse the marked strings become JSON.rawJSON values
   * (shown exactly by JSON.stringify) or, in the span columns and in browsers
   * without rawJSON, numbers. No reviver: it would cost a call per value.
   */
  function parseJSON(text) {
    var big = bigIntegerTokens(text);
    if (!big.length) return JSON.parse(text);
    var mark = "\u0000" + Math.random().toString(36).slice(2) + ":";
    var parts = [], last = 0;
    for (var k = 0; k < big.length; k++) {
      parts.push(text.slice(last, big[k][0]), JSON.stringify(mark + text.slice(big[k][0], big[k][1])));
      last = big[k][1];
    }
    parts.push(text.slice(last));
    var d = JSON.parse(parts.join(""));
    var exact = typeof JSON.rawJSON === "function";
    function restore(v, asNumber) {
      if (typeof v === "string") {
        if (v.indexOf(mark) !== 0) return v;
        var digits = v.slice(mark.length);
        return exact && !asNumber ? JSON.rawJSON(digits) : Number(digits);
      }
      if (Array.isArray(v)) { for (var i = 0; i < v.length; i++) v[i] = restore(v[i], asNumber); }
      else if (v && typeof v === "object") { for (var key in v) v[key] = restore(v[key], asNumber); }
      return v;
    }
    var spans = d && d.spans;
    if (d) delete d.spans;
    restore(d, false);
    if (spans) { restore(spans, true); d.spans = spans; }
    return d;
  }

  /** [start, end) of every integer token outside strings that is not a safe integer. */
  function bigIntegerTokens(text) {
    var out = [], inString = false;
    for (var i = 0, n = text.length; i < n; i++) {
      var c = text.charCodeAt(i);
      if (inString) {
        if (c === 92) i++;
        else if (c === 34) inString = false;
      } else if (c === 34) {
        inString = true;
      } else if (c === 45 || (c >= 48 && c <= 57)) {
        var j = i + 1, integer = true;
        for (; j < n; j++) {
          var d = text.charCodeAt(j);
          if (d >= 48 && d <= 57) continue;
          if (d === 46 || d === 101 || d === 69 || d === 43 || d === 45) { integer = false; continue; }
          break;
        }
        if (integer && j - i >= 16 && !Number.isSafeInteger(Number(text.slice(i, j)))) out.push([i, j]);
        i = j - 1;
      }
    }
    return out;
  }

  function readData() {
    var node = document.getElementById("vmtrace-data");
    var text = node ? node.textContent : "";
    if (!/^\s*\{/.test(text)) throw new Error("This report holds no trace data.");
    var d = parseJSON(text);
    if (!d || d.format !== "vmtrace-report") throw new Error("Not vmtrace report data (format is not \"vmtrace-report\").");
    if (d.version !== 1) throw new Error("Unsupported report data version " + d.version + "; this viewer reads version 1.");
    return d;
  }

  /** Data -> model: the span columns as typed arrays, plus the sparse tables. */
  function decode(d) {
    var S = d.spans || {};
    var n = (S.id || []).length;
    var unit = d.time_unit_ns || 1;
    checkColumns(d, S, n);
    var m = {
      n: n, data: d, traceId: String(d.trace_id || ""), strings: d.strings || [], kinds: d.kinds || [],
      id: new Float64Array(n), kind: new Uint16Array(n), name: new Int32Array(n), track: new Int32Array(n),
      start: new Float64Array(n), dur: new Float64Array(n), parent: new Int32Array(n)
    };
    var id = 0, st = 0;
    for (var i = 0; i < n; i++) {
      id += S.id[i];
      st += S.start[i];
      m.id[i] = id;
      m.kind[i] = S.kind[i];
      m.name[i] = S.name[i];
      m.track[i] = S.track[i];
      m.start[i] = st * unit;
      m.dur[i] = S.duration[i] * unit;
    }
    m.kindName = m.kinds.map(String);
    m.kindColor = m.kindName.map(kindColor);
    m.kindMarker = m.kindName.map(function (k) { return MARKER_KINDS[k] === 1; });
    indexIds(m);
    var parentDelta = S.parent;
    for (i = 0; i < n; i++) m.parent[i] = parentDelta[i] === 0 ? -1 : m.indexOf(m.id[i] - parentDelta[i]);
    m.parentId = function (j) { return parentDelta[j] === 0 ? 0 : m.id[j] - parentDelta[j]; };
    indexSparse(m, d);
    return m;
  }

  /** A writer's mistakes surface as a clear message on the page, not as a broken drawing. */
  function checkColumns(d, S, n) {
    var nk = (d.kinds || []).length, ns = (d.strings || []).length;
    ["id", "parent", "kind", "name", "track", "start", "duration"].forEach(function (c) {
      if (!Array.isArray(S[c]) || S[c].length !== n) throw new Error("spans." + c + " must be an array of " + n + " integers (the length of spans.id)");
    });
    if (typeof d.count === "number" && d.count !== n) throw new Error("count is " + d.count + " but spans.id has " + n + " entries");
    for (var i = 0; i < n; i++) {
      if (!(S.kind[i] >= 0 && S.kind[i] < nk)) throw new Error("span index " + i + ": kind " + S.kind[i] + " is not an index into kinds (" + nk + " entries)");
      if (!(S.name[i] >= 0 && S.name[i] < ns)) throw new Error("span index " + i + ": name " + S.name[i] + " is not an index into strings (" + ns + " entries)");
    }
    (d.meta || []).forEach(function (e) {
      if (!Array.isArray(e) || !(e[0] >= 0 && e[0] < n) || e.length % 2 !== 1) throw new Error("bad meta entry " + JSON.stringify(e).slice(0, 80));
      for (var k = 1; k < e.length; k += 2) if (!(e[k] >= 0 && e[k] < ns)) throw new Error("meta entry of span index " + e[0] + ": key " + e[k] + " is not an index into strings");
    });
    [["events", d.events], ["links", d.links]].forEach(function (p) {
      (p[1] || []).forEach(function (e) {
        if (!Array.isArray(e) || e.length < 3 || !(e[0] >= 0 && e[0] < n) || !(e[1] >= 0 && e[1] < ns)) throw new Error("bad " + p[0] + " entry " + JSON.stringify(e).slice(0, 80));
      });
    });
    d.strings = (d.strings || []).map(String);
  }

  /** id -> index: a table when ids are dense (they count up from 1), else a Map. */
  function indexIds(m) {
    var n = m.n, max = 0, i;
    for (i = 0; i < n; i++) if (m.id[i] > max) max = m.id[i];
    if (max <= 4 * n + 1024) {
      var table = new Int32Array(max + 1).fill(-1);
      for (i = 0; i < n; i++) if (m.id[i] >= 0 && m.id[i] === Math.floor(m.id[i])) table[m.id[i]] = i;
      m.indexOf = function (x) { return x >= 0 && x <= max && x === Math.floor(x) ? table[x] : -1; };
    } else {
      var map = new Map();
      for (i = 0; i < n; i++) map.set(m.id[i], i);
      m.indexOf = function (x) { var v = map.get(x); return v === undefined ? -1 : v; };
    }
  }

  /** Metadata, events and links: which entries belong to which span. */
  function indexSparse(m, d) {
    var meta = d.meta || [], events = d.events || [], links = d.links || [];
    m.metaAt = new Int32Array(m.n).fill(-1);
    for (var j = 0; j < meta.length; j++) if (meta[j][0] < m.n) m.metaAt[meta[j][0]] = j;
    m.eventsOf = groupBySpan(events);
    m.linksOf = groupBySpan(links);
    m.metaCache = new Map();
  }
  function groupBySpan(entries) {
    var map = new Map();
    for (var j = 0; j < entries.length; j++) {
      var list = map.get(entries[j][0]);
      if (!list) map.set(entries[j][0], list = []);
      list.push(entries[j]);
    }
    return map;
  }
  /** The metadata object of a span (built on first use), or null. */
  function metadataOf(m, i) {
    var j = m.metaAt[i];
    if (j < 0) return null;
    var o = m.metaCache.get(j);
    if (o) return o;
    var e = m.data.meta[j];
    o = {};
    for (var k = 1; k + 1 < e.length; k += 2) o[m.strings[e[k]]] = e[k + 1];
    m.metaCache.set(j, o);
    return o;
  }

  // ---- deriving: tree, rows, self time, totals (linear passes) ------------------

  function derive(m, timings) {
    [sortByStart, buildChildren, buildPreorder, buildRows, computeSelfTime, readUsage, computeSubtreeTotals, countFlags]
      .forEach(function (step) {
        var t = performance.now();
        step(m);
        timings[step.name] = performance.now() - t;
      });
  }

  /** order: span indices by start (then id); the identity when already sorted. */
  function sortByStart(m) {
    var n = m.n, order = new Int32Array(n), sorted = true, i;
    for (i = 0; i < n; i++) {
      order[i] = i;
      if (i && (m.start[i] < m.start[i - 1] || (m.start[i] === m.start[i - 1] && m.id[i] < m.id[i - 1]))) sorted = false;
    }
    if (!sorted) order.sort(function (a, b) { return m.start[a] - m.start[b] || m.id[a] - m.id[b]; });
    m.order = order;
    var t0 = Infinity, t1 = -Infinity;
    for (i = 0; i < n; i++) {
      if (m.start[i] < t0) t0 = m.start[i];
      if (m.start[i] + m.dur[i] > t1) t1 = m.start[i] + m.dur[i];
    }
    m.t0 = n ? t0 : 0;
    m.t1 = n ? Math.max(t1, t0 + 1) : 1;
  }

  /** Children lists (CSR), each in start order; roots are spans without a parent here. */
  function buildChildren(m) {
    var n = m.n, off = new Int32Array(n + 1), list = new Int32Array(n), fill = new Int32Array(n), i, k;
    for (i = 0; i < n; i++) if (m.parent[i] >= 0) off[m.parent[i] + 1]++;
    for (i = 0; i < n; i++) off[i + 1] += off[i];
    var roots = [];
    for (k = 0; k < n; k++) {
      i = m.order[k];
      var p = m.parent[i];
      if (p < 0) roots.push(i);
      else list[off[p] + fill[p]++] = i;
    }
    m.childOff = off;
    m.childList = list;
    m.roots = roots;
  }

  /** Preorder and tree depth; spans caught in a parent cycle become roots too. */
  function buildPreorder(m) {
    var n = m.n, pre = new Int32Array(n), depth = new Int32Array(n), seen = new Uint8Array(n);
    var stack = new Int32Array(n + 1), len = 0, count = 0;
    function walk(r) {
      stack[len++] = r;
      depth[r] = 0;
      while (len) {
        var i = stack[--len];
        if (seen[i]) continue;
        seen[i] = 1;
        pre[count++] = i;
        for (var c = m.childOff[i + 1] - 1; c >= m.childOff[i]; c--) {
          var ch = m.childList[c];
          depth[ch] = depth[i] + 1;
          stack[len++] = ch;
        }
      }
    }
    for (var r = 0; r < m.roots.length; r++) walk(m.roots[r]);
    if (count < n) {
      // Spans not reached from a root hang off a parent cycle: cut each cycle
      // at one of its spans, which becomes a root, and build the tree again.
      for (var k = 0; k < n; k++) {
        var i = m.order[k];
        if (seen[i]) continue;
        var slow = i, fast = i;
        do { slow = m.parent[slow]; fast = m.parent[m.parent[fast]]; } while (slow !== fast);
        m.parent[slow] = -1;
        m.cycleCut = (m.cycleCut || 0) + 1;
        walk(slow);
      }
      buildChildren(m);
      buildPreorder(m);
      return;
    }
    m.preorder = pre;
    m.treeDepth = depth;
  }

  /**
   * Rows of the timeline: one group per track (coroutine), one row per depth
   * of nesting within the track. Each row lists its spans in start order with
   * a running maximum of their ends, so the first visible span of a row is a
   * binary search away.
   */
  function buildRows(m) {
    var n = m.n, depth = new Int32Array(n), i, k;
    for (k = 0; k < n; k++) {
      i = m.preorder[k];
      var p = m.parent[i];
      depth[i] = p >= 0 && m.track[p] === m.track[i] ? depth[p] + 1 : 0;
    }
    // Track ids -> dense track numbers in first-seen order (spans of one track come in runs).
    var trackIds = [], trackOf = new Map(), maxDepth = [], dense = new Int32Array(n), lastT = NaN, lastTi = -1;
    for (i = 0; i < n; i++) {
      var t = m.track[i], ti = lastTi;
      if (t !== lastT) {
        ti = trackOf.get(t);
        if (ti === undefined) { trackOf.set(t, ti = trackIds.length); trackIds.push(t); maxDepth.push(0); }
        lastT = t; lastTi = ti;
      }
      dense[i] = ti;
      if (depth[i] > maxDepth[ti]) maxDepth[ti] = depth[i];
    }
    // Tracks in id order (0, the main thread, first); each gets a block of rows.
    var byId = trackIds.map(function (t, j) { return j; }).sort(function (a, b) { return trackIds[a] - trackIds[b]; });
    var tracks = byId.map(function (j) { return { id: trackIds[j], rows: maxDepth[j] + 1, rowBase: 0 }; });
    var base = new Int32Array(trackIds.length), rows = 0;
    tracks.forEach(function (t, k) { t.rowBase = rows; base[byId[k]] = rows; rows += t.rows; trackOf.set(t.id, k); });
    var row = new Int32Array(n), rowOff = new Int32Array(rows + 1), rowFill = new Int32Array(rows);
    for (i = 0; i < n; i++) { row[i] = base[dense[i]] + depth[i]; rowOff[row[i] + 1]++; }
    for (k = 0; k < rows; k++) rowOff[k + 1] += rowOff[k];
    var rowSpans = new Int32Array(n), rowMaxEnd = new Float64Array(n);
    for (k = 0; k < n; k++) { i = m.order[k]; rowSpans[rowOff[row[i]] + rowFill[row[i]]++] = i; }
    for (var r = 0; r < rows; r++) {
      var mx = -Infinity;
      for (k = rowOff[r]; k < rowOff[r + 1]; k++) {
        i = rowSpans[k];
        var e = m.start[i] + m.dur[i];
        if (e > mx) mx = e;
        rowMaxEnd[k] = mx;
      }
    }
    m.depth = depth;
    m.tracks = tracks;
    m.trackIndex = trackOf;
    m.row = row;
    m.rowCount = rows;
    m.rowOff = rowOff;
    m.rowSpans = rowSpans;
    m.rowMaxEnd = rowMaxEnd;
  }

  /** Self time: duration less the union of the children's intervals inside it. */
  function computeSelfTime(m) {
    var n = m.n, self = new Float64Array(n);
    for (var i = 0; i < n; i++) {
      var s = m.start[i], e = s + m.dur[i], covered = 0, runS = 0, runE = -Infinity;
      for (var c = m.childOff[i]; c < m.childOff[i + 1]; c++) {
        var ch = m.childList[c];
        var cs = Math.max(m.start[ch], s), ce = Math.min(m.start[ch] + m.dur[ch], e);
        if (ce <= cs) continue;
        if (cs > runE) { if (runE > runS) covered += runE - runS; runS = cs; runE = ce; }
        else if (ce > runE) runE = ce;
      }
      if (runE > runS) covered += runE - runS;
      self[i] = Math.max(0, m.dur[i] - covered);
    }
    m.self = self;
  }

  /** LLM usage of llm_call spans, read from their metadata (FORMAT.md, "LLM usage"). */
  function readUsage(m) {
    var llmKind = m.kindName.indexOf("llm_call");
    var keyIndex = {};
    USAGE_KEYS.forEach(function (k) { keyIndex[k] = -1; });
    for (var s = 0; s < m.strings.length; s++) if (keyIndex[m.strings[s]] === -1) keyIndex[m.strings[s]] = s;
    var calls = [];
    var meta = m.data.meta || [];
    for (var j = 0; j < meta.length; j++) {
      var e = meta[j], i = e[0];
      if (m.kind[i] !== llmKind) continue;
      var u = { i: i, model: "", provider: "", input: 0, output: 0, cacheRead: 0, cacheWrite: 0, cost: null };
      for (var k = 1; k + 1 < e.length; k += 2) {
        var key = e[k], v = e[k + 1];
        if (key === keyIndex.model) u.model = v === null || v === undefined ? "" : String(v);
        else if (key === keyIndex.provider) u.provider = v === null || v === undefined ? "" : String(v);
        else if (key === keyIndex.input_tokens) u.input = num(v) || 0;
        else if (key === keyIndex.output_tokens) u.output = num(v) || 0;
        else if (key === keyIndex.cache_read_tokens) u.cacheRead = num(v) || 0;
        else if (key === keyIndex.cache_write_tokens) u.cacheWrite = num(v) || 0;
        else if (key === keyIndex.cost_usd && isFinite(num(v))) u.cost = num(v);
      }
      u.tokens = u.input + u.output + u.cacheRead + u.cacheWrite;
      calls.push(u);
    }
    // llm_call spans without metadata still count as calls, with no usage.
    if (llmKind >= 0) {
      for (var x = 0; x < m.n; x++) {
        if (m.kind[x] === llmKind && m.metaAt[x] < 0) calls.push({ i: x, model: "", provider: "", input: 0, output: 0, cacheRead: 0, cacheWrite: 0, cost: null, tokens: 0 });
      }
    }
    calls.sort(function (a, b) { return m.start[a.i] - m.start[b.i]; });
    m.llm = calls;
  }

  /** Tokens and cost of each subtree, and the nearest enclosing step of each span. */
  function computeSubtreeTotals(m) {
    var n = m.n, tok = new Float64Array(n), cost = new Float64Array(n), stepOf = new Int32Array(n), k, i;
    m.llm.forEach(function (u) { tok[u.i] += u.tokens; if (u.cost !== null) cost[u.i] += u.cost; });
    for (k = n - 1; k >= 0; k--) {
      i = m.preorder[k];
      var p = m.parent[i];
      if (p >= 0) { tok[p] += tok[i]; cost[p] += cost[i]; }
    }
    var stepKind = m.kindName.indexOf("step");
    for (k = 0; k < n; k++) {
      i = m.preorder[k];
      var par = m.parent[i];
      stepOf[i] = m.kind[i] === stepKind ? i : par >= 0 ? stepOf[par] : -1;
    }
    m.subTokens = tok;
    m.subCost = cost;
    m.stepOf = stepOf;
  }

  /** Unfinished spans (metadata.unfinished === true) and the LLM totals. */
  function countFlags(m) {
    var key = m.strings.indexOf("unfinished"), unfinished = 0, meta = m.data.meta || [];
    if (key >= 0) {
      for (var j = 0; j < meta.length; j++) {
        var e = meta[j];
        for (var k = 1; k + 1 < e.length; k += 2) if (e[k] === key && e[k + 1] === true) unfinished++;
      }
    }
    m.unfinished = unfinished;
    var t = { calls: 0, input: 0, output: 0, cacheRead: 0, cacheWrite: 0, cost: 0, unpriced: 0 };
    m.llm.forEach(function (u) {
      t.calls++; t.input += u.input; t.output += u.output; t.cacheRead += u.cacheRead; t.cacheWrite += u.cacheWrite;
      if (u.cost === null) t.unpriced++; else t.cost += u.cost;
    });
    var given = m.data.totals;
    if (given && typeof given === "object") {
      t = {
        calls: num(given.llm_calls) || 0, input: num(given.input_tokens) || 0, output: num(given.output_tokens) || 0,
        cacheRead: num(given.cache_read_tokens) || 0, cacheWrite: num(given.cache_write_tokens) || 0,
        cost: num(given.cost_usd) || 0, unpriced: num(given.unpriced_calls) || 0
      };
    }
    t.tokens = t.input + t.output + t.cacheRead + t.cacheWrite;
    m.totals = t;
  }

  function trackLabel(m, t) {
    var names = m.data.track_names;
    if (names && names[t] !== undefined) return String(names[t]);
    return t === 0 ? "main" : "coroutine " + t;
  }
  function isInstant(m, i) {
    return m.dur[i] === 0 || m.kindMarker[m.kind[i]];
  }

  // ---- header --------------------------------------------------------------------

  function renderHeader(m) {
    document.getElementById("trace-id").textContent = m.traceId;
    document.title = "vmtrace report: " + m.traceId;
    var stats = document.getElementById("stats");
    clear(stats);
    var t = m.totals, origin = Number(m.data.origin_unix_ns) / 1e6;
    var items = [
      ["started", fmtWall(origin + m.t0 / 1e6)],
      ["wall time", fmtDur(m.t1 - m.t0)],
      ["spans", fmtInt(m.n)],
      ["dropped", fmtInt(Number(m.data.dropped) || 0), Number(m.data.dropped) > 0],
      ["unfinished", fmtInt(m.unfinished), m.unfinished > 0],
      ["LLM calls", fmtInt(t.calls)],
      ["tokens", fmtInt(t.tokens)],
      ["input", fmtInt(t.input)],
      ["output", fmtInt(t.output)],
      ["cache read", fmtInt(t.cacheRead)],
      ["cache write", fmtInt(t.cacheWrite)],
      ["cost", fmtCost(t.cost)],
      ["unpriced calls", fmtInt(t.unpriced), t.unpriced > 0],
      ["report made", fmtWall(Number(m.data.generated_at_unix_ms))]
    ];
    items.forEach(function (it) {
      var div = el("div", it[2] ? "warn" : "");
      div.dataset.stat = it[0];
      div.appendChild(el("dt", "", it[0]));
      div.appendChild(el("dd", "", it[1]));
      stats.appendChild(div);
    });
  }

  function renderLegend(m) {
    var legend = document.getElementById("legend");
    clear(legend);
    var present = new Uint8Array(m.kindName.length);
    for (var i = 0; i < m.n; i++) present[m.kind[i]] = 1;
    m.kindName.forEach(function (k, j) {
      if (!present[j]) return;
      var item = el("span");
      var sw = el("i", m.kindMarker[j] ? "instant" : "");
      sw.style.background = m.kindColor[j];
      item.appendChild(sw);
      item.appendChild(document.createTextNode(k));
      legend.appendChild(item);
    });
  }

  // ---- timeline --------------------------------------------------------------------

  /**
   * The flame chart on a canvas: a time axis, one group of rows per track,
   * spans drawn only where visible, runs of spans narrower than a pixel drawn
   * as one rectangle, instants as diamonds.
   */
  function Timeline(m, canvas, app) {
    this.m = m;
    this.app = app;
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.AXIS_H = 22; this.ROW_H = 18; this.HEAD_H = 16; this.GAP = 6;
    this.v0 = m.t0; this.v1 = m.t1;
    this.scrollY = 0;
    this.width = 1; this.height = 1; this.dpr = 1;
    this.hover = -1;
    this.match = null;
    this.pending = false;
    this.layoutTracks();
    this.textColor = m.kindColor.map(function (c) {
      if (c[0] !== "#") return "#111";
      var rgb = hexToRgb(c);
      return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 150 ? "#111" : "#fff";
    });
    this.resetView();
  }
  Timeline.prototype.layoutTracks = function () {
    var y = 0, self = this;
    this.trackTop = this.m.tracks.map(function (t) {
      var top = y;
      y += self.HEAD_H + t.rows * self.ROW_H + self.GAP;
      return top;
    });
    this.contentH = y;
  };
  Timeline.prototype.resetView = function () {
    var pad = (this.m.t1 - this.m.t0) * 0.01;
    this.v0 = this.m.t0 - pad;
    this.v1 = this.m.t1 + pad;
    this.scrollY = 0;
  };
  Timeline.prototype.resize = function () {
    var r = this.canvas.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    this.width = Math.max(1, r.width);
    this.height = Math.max(1, r.height);
    this.canvas.width = Math.round(this.width * this.dpr);
    this.canvas.height = Math.round(this.height * this.dpr);
    this.ctx.font = "11px " + getComputedStyle(document.body).fontFamily;
    this.charW = this.ctx.measureText("abcdefghijklmnopqrstuvwxyz_0123").width / 31 || 6;
    this.clampScroll();
  };
  Timeline.prototype.scale = function () {
    return this.width / (this.v1 - this.v0);
  };
  Timeline.prototype.rowTop = function (r) {
    var m = this.m;
    for (var k = 0; k < m.tracks.length; k++) {
      var t = m.tracks[k];
      if (r < t.rowBase + t.rows) return this.trackTop[k] + this.HEAD_H + (r - t.rowBase) * this.ROW_H;
    }
    return 0;
  };
  /** Client-relative y of a content y. */
  Timeline.prototype.screenY = function (cy) {
    return this.AXIS_H + cy - this.scrollY;
  };
  Timeline.prototype.clampScroll = function () {
    var maxScroll = Math.max(0, this.contentH - (this.height - this.AXIS_H) + this.ROW_H);
    this.scrollY = Math.min(Math.max(0, this.scrollY), maxScroll);
  };
  Timeline.prototype.clampView = function () {
    var full = this.m.t1 - this.m.t0, w = this.v1 - this.v0;
    var minW = 50, maxW = full * 1.2 + 1;
    if (w < minW) { var c = (this.v0 + this.v1) / 2; this.v0 = c - minW / 2; this.v1 = c + minW / 2; w = minW; }
    if (w > maxW) { this.v0 = this.m.t0 - (maxW - full) / 2; this.v1 = this.v0 + maxW; return; }
    var lo = this.m.t0 - full * 0.1, hi = this.m.t1 + full * 0.1;
    if (this.v0 < lo) { this.v0 = lo; this.v1 = lo + w; }
    if (this.v1 > hi) { this.v1 = hi; this.v0 = hi - w; }
  };
  Timeline.prototype.zoomAt = function (factor, x) {
    var t = this.v0 + x / this.scale();
    this.v0 = t - (t - this.v0) * factor;
    this.v1 = t + (this.v1 - t) * factor;
    this.clampView();
    this.requestDraw();
  };
  Timeline.prototype.pan = function (dxPx, dyPx) {
    var dt = dxPx / this.scale();
    this.v0 += dt; this.v1 += dt;
    this.scrollY += dyPx;
    this.clampView();
    this.clampScroll();
    this.requestDraw();
  };
  Timeline.prototype.requestDraw = function () {
    if (this.pending) return;
    this.pending = true;
    var self = this;
    requestAnimationFrame(function () { self.pending = false; self.draw(); });
  };

  Timeline.prototype.draw = function () {
    var ctx = this.ctx, m = this.m;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);
    this.drawGrid();
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, this.AXIS_H, this.width, this.height - this.AXIS_H);
    ctx.clip();
    ctx.textBaseline = "middle";
    for (var k = 0; k < m.tracks.length; k++) {
      var t = m.tracks[k];
      var top = this.screenY(this.trackTop[k]);
      var bottom = top + this.HEAD_H + t.rows * this.ROW_H;
      if (bottom < this.AXIS_H || top > this.height) continue;
      ctx.fillStyle = "#eef1f5";
      ctx.fillRect(0, top, this.width, this.HEAD_H - 2);
      ctx.fillStyle = "#475569";
      ctx.fillText(trackLabel(m, t.id) + "  (track " + t.id + ")", 6, top + this.HEAD_H / 2 - 1);
      for (var d = 0; d < t.rows; d++) {
        var y = top + this.HEAD_H + d * this.ROW_H;
        if (y + this.ROW_H < this.AXIS_H || y > this.height) continue;
        this.drawRow(t.rowBase + d, y);
      }
    }
    this.drawOutline(this.hover, "rgba(15,23,42,.55)", 1);
    this.drawOutline(this.app.selected, "#f59e0b", 2.5);
    ctx.restore();
    this.drawAxis();
    this.app.onViewChange();
  };

  /** The first span of row r whose end reaches t (rows keep a running max of ends). */
  Timeline.prototype.firstReaching = function (r, t) {
    var m = this.m;
    return lowerBoundF64(m.rowMaxEnd, m.rowOff[r], m.rowOff[r + 1], t);
  };

  Timeline.prototype.drawRow = function (r, y) {
    var m = this.m, ctx = this.ctx, v0 = this.v0, v1 = this.v1, sc = this.scale();
    var match = this.match, dim = match !== null;
    var hi = m.rowOff[r + 1], h = this.ROW_H - 2;
    var runX0 = 0, runX1 = -1, runKind = 0, runMatch = 0, lastInstant = -1e9;
    var instants = [];
    var self = this;
    function flush() {
      if (runX1 < 0) return;
      self.fillSpan(runKind, runMatch, dim, runX0, y + 1, Math.max(1, runX1 - runX0), h);
      runX1 = -1;
    }
    for (var k = this.firstReaching(r, v0); k < hi; k++) {
      var i = m.rowSpans[k], s = m.start[i];
      if (s > v1) break;
      var x0 = (s - v0) * sc;
      if (isInstant(m, i)) {
        var px = Math.round(x0);
        if (px !== lastInstant || (match && match[i])) { instants.push(i); lastInstant = px; }
        continue;
      }
      var x1 = (s + m.dur[i] - v0) * sc;
      var mi = match ? match[i] : 0;
      if (x1 - x0 < 1.5) {
        if (runX1 >= 0 && x0 <= runX1 + 0.75) {
          if (x1 > runX1) runX1 = x1;
          runMatch |= mi;
          continue;
        }
        flush();
        runX0 = x0; runX1 = Math.max(x1, x0 + 1); runKind = m.kind[i]; runMatch = mi;
        continue;
      }
      flush();
      this.drawSpan(i, x0, x1, y, h, mi, dim);
    }
    flush();
    for (var q = 0; q < instants.length; q++) this.drawInstant(instants[q], y, match ? match[instants[q]] : 0, dim);
  };

  Timeline.prototype.fillSpan = function (kind, matched, dim, x, y, w, h) {
    var ctx = this.ctx;
    ctx.globalAlpha = dim && !matched ? 0.25 : 1;
    ctx.fillStyle = this.m.kindColor[kind];
    ctx.fillRect(x, y, w, h);
    ctx.globalAlpha = 1;
    if (matched) {
      ctx.strokeStyle = "#facc15";
      ctx.lineWidth = 2;
      ctx.strokeRect(x - 1, y - 1, w + 2, h + 2);
    }
  };

  Timeline.prototype.drawSpan = function (i, x0, x1, y, h, matched, dim) {
    var m = this.m, ctx = this.ctx;
    var cx0 = Math.max(x0, -2), cx1 = Math.min(x1, this.width + 2);
    var w = cx1 - cx0 - (x1 - x0 > 4 ? 0.75 : 0);
    this.fillSpan(m.kind[i], matched, dim, cx0, y + 1, w, h);
    var evs = w > 8 ? m.eventsOf.get(i) : null;
    if (evs) {
      ctx.fillStyle = "rgba(255,255,255,.85)";
      var sc = this.scale();
      for (var e = 0; e < evs.length; e++) {
        var ex = (m.start[i] + evs[e][2] * (m.data.time_unit_ns || 1) - this.v0) * sc;
        if (ex >= cx0 && ex <= cx1) ctx.fillRect(ex - 0.5, y + h - 4, 1.5, 4);
      }
    }
    if (w > 28) {
      var label = m.strings[m.name[i]];
      var maxChars = Math.floor((w - 6) / this.charW);
      if (maxChars >= 2) {
        if (label.length > maxChars) label = label.slice(0, maxChars - 1) + "…";
        ctx.globalAlpha = dim && !matched ? 0.45 : 1;
        ctx.fillStyle = this.textColor[m.kind[i]];
        ctx.fillText(label, Math.max(cx0, 0) + 3, y + 1 + h / 2);
        ctx.globalAlpha = 1;
      }
    }
  };

  Timeline.prototype.drawInstant = function (i, y, matched, dim) {
    var ctx = this.ctx, m = this.m;
    var x = (m.start[i] - this.v0) * this.scale(), cy = y + this.ROW_H / 2, r = 5;
    ctx.globalAlpha = dim && !matched ? 0.3 : 1;
    ctx.beginPath();
    ctx.moveTo(x, cy - r); ctx.lineTo(x + r, cy); ctx.lineTo(x, cy + r); ctx.lineTo(x - r, cy);
    ctx.closePath();
    ctx.fillStyle = m.kindColor[m.kind[i]];
    ctx.fill();
    ctx.lineWidth = matched ? 2 : 1;
    ctx.strokeStyle = matched ? "#facc15" : "#1f2937";
    ctx.stroke();
    ctx.globalAlpha = 1;
  };

  Timeline.prototype.drawOutline = function (i, color, width) {
    if (i < 0) return;
    var r = this.localRect(i);
    if (!r) return;
    var ctx = this.ctx;
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.strokeRect(r.x - 1, r.y, r.w + 2, r.h);
  };

  /** Canvas-local rectangle of span i (instants get a 12px box), or null if off screen. */
  Timeline.prototype.localRect = function (i) {
    var m = this.m, sc = this.scale();
    var y = this.screenY(this.rowTop(m.row[i]));
    var x0 = (m.start[i] - this.v0) * sc, x1 = (m.start[i] + m.dur[i] - this.v0) * sc;
    if (isInstant(m, i)) { x0 -= 6; x1 = x0 + 12; }
    else if (x1 - x0 < 2) { x1 = x0 + 2; }
    if (x1 < 0 || x0 > this.width || y + this.ROW_H < this.AXIS_H || y > this.height) return null;
    var cx0 = Math.max(0, x0), cx1 = Math.min(this.width, x1);
    return { x: cx0, y: y, w: cx1 - cx0, h: this.ROW_H };
  };

  Timeline.prototype.drawGrid = function () {
    var ctx = this.ctx, sc = this.scale();
    var step = niceStep((this.v1 - this.v0) * 110 / this.width);
    var first = Math.ceil((this.v0 - this.m.t0) / step) * step + this.m.t0;
    ctx.fillStyle = "#f1f3f6";
    for (var t = first; t <= this.v1; t += step) ctx.fillRect(Math.round((t - this.v0) * sc), this.AXIS_H, 1, this.height);
  };

  Timeline.prototype.drawAxis = function () {
    var ctx = this.ctx, sc = this.scale();
    ctx.fillStyle = "#fafbfc";
    ctx.fillRect(0, 0, this.width, this.AXIS_H);
    ctx.fillStyle = "#d7dbe0";
    ctx.fillRect(0, this.AXIS_H - 1, this.width, 1);
    var step = niceStep((this.v1 - this.v0) * 110 / this.width);
    var first = Math.ceil((this.v0 - this.m.t0) / step) * step + this.m.t0;
    ctx.fillStyle = "#475569";
    ctx.textBaseline = "middle";
    for (var t = first; t <= this.v1; t += step) {
      var x = Math.round((t - this.v0) * sc);
      ctx.fillRect(x, this.AXIS_H - 6, 1, 6);
      ctx.fillText(fmtDur(t - this.m.t0) || "0", x + 3, this.AXIS_H / 2 - 2);
    }
  };

  /** The span under a canvas-local point, preferring instants and short spans. */
  Timeline.prototype.hitTest = function (x, y) {
    var m = this.m;
    if (y < this.AXIS_H) return -1;
    var cy = y - this.AXIS_H + this.scrollY;
    for (var k = 0; k < m.tracks.length; k++) {
      var top = this.trackTop[k] + this.HEAD_H, t = m.tracks[k];
      if (cy < top || cy >= top + t.rows * this.ROW_H) continue;
      var r = t.rowBase + Math.floor((cy - top) / this.ROW_H);
      var sc = this.scale(), at = this.v0 + x / sc, tol = 6 / sc;
      var best = -1, bestScore = Infinity, hi = m.rowOff[r + 1];
      for (var q = this.firstReaching(r, at - tol), n = 0; q < hi && n < 20000; q++, n++) {
        var i = m.rowSpans[q], s = m.start[i];
        if (s > at + tol) break;
        var score;
        if (isInstant(m, i)) score = Math.abs(s - at) * sc - 0.5;
        else {
          var e = s + m.dur[i];
          if (at >= s && at <= e) score = 0;
          else score = (at < s ? s - at : at - e) * sc + 1;
          if (score > 6) continue;
        }
        if (score > 6) continue;
        if (score < bestScore || (score === bestScore && m.dur[i] < m.dur[best])) { best = i; bestScore = score; }
      }
      return best;
    }
    return -1;
  };

  /** Zooms and scrolls so span i is visible and at least a few pixels wide. */
  Timeline.prototype.reveal = function (i) {
    var m = this.m, w = this.v1 - this.v0, s = m.start[i], e = s + m.dur[i];
    var nw = w;
    if (m.dur[i] > 0 && m.dur[i] * (this.width / w) < 6) nw = m.dur[i] / 0.3;
    if (m.dur[i] > w * 0.95) nw = m.dur[i] / 0.8;
    if (s < this.v0 || e > this.v1 || nw !== w) {
      var c = (s + e) / 2;
      this.v0 = c - nw / 2;
      this.v1 = c + nw / 2;
      this.clampView();
    }
    var top = this.rowTop(m.row[i]);
    var viewH = this.height - this.AXIS_H;
    if (top < this.scrollY || top + this.ROW_H > this.scrollY + viewH) this.scrollY = top - viewH / 3;
    this.clampScroll();
  };

  function niceStep(raw) {
    if (!(raw > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  }

  /** Mouse and keyboard on the timeline: wheel zoom, drag pan, click select, hover tooltip. */
  function bindTimeline(tl, app) {
    var canvas = tl.canvas, drag = null;
    canvas.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var unit = ev.deltaMode === 1 ? 16 : ev.deltaMode === 2 ? 400 : 1;
      var dx = ev.deltaX * unit, dy = ev.deltaY * unit;
      if (ev.shiftKey) tl.pan(0, dy || dx);
      else if (Math.abs(dx) > Math.abs(dy)) tl.pan(dx, 0);
      else tl.zoomAt(Math.exp(dy * 0.0015), ev.offsetX);
    }, { passive: false });
    canvas.addEventListener("pointerdown", function (ev) {
      if (ev.button !== 0) return;
      canvas.setPointerCapture(ev.pointerId);
      drag = { x: ev.clientX, y: ev.clientY, lastX: ev.clientX, lastY: ev.clientY, moved: false };
      canvas.focus();
    });
    canvas.addEventListener("pointermove", function (ev) {
      var r = canvas.getBoundingClientRect();
      if (drag) {
        if (Math.abs(ev.clientX - drag.x) + Math.abs(ev.clientY - drag.y) > 3) { drag.moved = true; canvas.classList.add("dragging"); }
        if (drag.moved) {
          tl.pan(drag.lastX - ev.clientX, drag.lastY - ev.clientY);
          drag.lastX = ev.clientX; drag.lastY = ev.clientY;
          app.hideTooltip();
          return;
        }
      }
      var i = tl.hitTest(ev.clientX - r.left, ev.clientY - r.top);
      if (i !== tl.hover) { tl.hover = i; tl.requestDraw(); }
      if (i >= 0) app.showTooltip(i, ev.clientX, ev.clientY); else app.hideTooltip();
    });
    canvas.addEventListener("pointerup", function (ev) {
      if (!drag) return;
      var wasClick = !drag.moved;
      drag = null;
      canvas.classList.remove("dragging");
      if (wasClick) {
        var r = canvas.getBoundingClientRect();
        var i = tl.hitTest(ev.clientX - r.left, ev.clientY - r.top);
        if (i >= 0) app.select(i, "timeline");
      }
    });
    canvas.addEventListener("pointerleave", function () {
      if (tl.hover >= 0) { tl.hover = -1; tl.requestDraw(); }
      app.hideTooltip();
    });
  }

  // ---- minimap (overview of the whole run) ---------------------------------------

  /** The overview strip: span starts per pixel column, LLM activity, search hits, the viewport. */
  function Minimap(m, canvas, tl) {
    this.m = m; this.canvas = canvas; this.tl = tl; this.ctx = canvas.getContext("2d");
    this.width = 1; this.height = 1; this.dpr = 1;
    this.density = null;
    var self = this, dragging = false;
    function moveTo(ev) {
      var r = canvas.getBoundingClientRect();
      var t = m.t0 + (ev.clientX - r.left) / self.width * (m.t1 - m.t0);
      var w = tl.v1 - tl.v0;
      tl.v0 = t - w / 2; tl.v1 = t + w / 2;
      tl.clampView();
      tl.requestDraw();
    }
    canvas.addEventListener("pointerdown", function (ev) { dragging = true; canvas.setPointerCapture(ev.pointerId); moveTo(ev); });
    canvas.addEventListener("pointermove", function (ev) { if (dragging) moveTo(ev); });
    canvas.addEventListener("pointerup", function () { dragging = false; });
  }
  Minimap.prototype.resize = function () {
    var r = this.canvas.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    this.width = Math.max(1, Math.round(r.width));
    this.height = Math.max(1, r.height);
    this.canvas.width = Math.round(this.width * this.dpr);
    this.canvas.height = Math.round(this.height * this.dpr);
    this.computeDensity();
  };
  Minimap.prototype.col = function (t) {
    var m = this.m;
    return Math.min(this.width - 1, Math.max(0, Math.floor((t - m.t0) / (m.t1 - m.t0) * this.width)));
  };
  Minimap.prototype.computeDensity = function () {
    var m = this.m, w = this.width, starts = new Float32Array(w), llm = new Float32Array(w + 1);
    for (var i = 0; i < m.n; i++) starts[this.col(m.start[i])]++;
    for (var j = 0; j < m.llm.length; j++) {
      var u = m.llm[j].i;
      llm[this.col(m.start[u])]++;
      llm[this.col(m.start[u] + m.dur[u]) + 1]--;
    }
    var max = 1;
    for (var c = 0; c < w; c++) { if (starts[c] > max) max = starts[c]; if (c) llm[c] += llm[c - 1]; }
    this.density = { starts: starts, llm: llm, max: Math.log(1 + max) };
  };
  Minimap.prototype.draw = function (match) {
    var ctx = this.ctx, m = this.m, d = this.density, h = this.height;
    if (!d) return;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.width, h);
    ctx.fillStyle = "#fbfcfd";
    ctx.fillRect(0, 0, this.width, h);
    ctx.fillStyle = "#94a3b8";
    for (var c = 0; c < this.width; c++) {
      if (!d.starts[c]) continue;
      var bh = Math.max(1, Math.log(1 + d.starts[c]) / d.max * (h - 8));
      ctx.fillRect(c, h - 6 - bh, 1, bh);
    }
    ctx.fillStyle = KIND_COLORS.llm_call;
    for (c = 0; c < this.width; c++) if (d.llm[c] > 0) ctx.fillRect(c, h - 5, 1, 4);
    if (match) {
      ctx.fillStyle = "#eab308";
      var last = -1;
      for (var i = 0; i < m.n; i++) {
        if (!match[i]) continue;
        var x = this.col(m.start[i]);
        if (x !== last) { ctx.fillRect(x, 0, 1, 6); last = x; }
      }
    }
    var full = m.t1 - m.t0;
    var x0 = (this.tl.v0 - m.t0) / full * this.width, x1 = (this.tl.v1 - m.t0) / full * this.width;
    ctx.fillStyle = "rgba(37,99,235,.12)";
    ctx.fillRect(x0, 0, Math.max(2, x1 - x0), h);
    ctx.strokeStyle = "#2563eb";
    ctx.lineWidth = 1.5;
    ctx.strokeRect(x0, 0.75, Math.max(2, x1 - x0), h - 1.5);
  };

  // ---- details panel ---------------------------------------------------------------

  function renderDetails(app, i) {
    var m = app.m, box = document.getElementById("details");
    clear(box);
    if (i < 0) {
      box.appendChild(el("p", "empty", "Click a span on the timeline or in the tree to see its details."));
      return;
    }
    var h = el("h2");
    h.appendChild(kindBadge(m, m.kind[i]));
    h.appendChild(el("span", "", m.strings[m.name[i]]));
    box.appendChild(h);
    var table = el("table");
    function row(label, value) {
      var tr = el("tr");
      tr.appendChild(el("td", "", label));
      var td = el("td");
      if (value instanceof Node) td.appendChild(value); else td.textContent = value;
      tr.appendChild(td);
      table.appendChild(tr);
    }
    var origin = Number(m.data.origin_unix_ns) / 1e6;
    row("kind", m.kindName[m.kind[i]]);
    row("name", m.strings[m.name[i]]);
    row("span id", String(m.id[i]));
    var pid = m.parentId(i);
    row("parent", pid === 0 ? "none (root)" : m.parent[i] >= 0 ? spanButton(app, m.parent[i]) : pid + " (not in this report)");
    row("track", trackLabel(m, m.track[i]) + " (" + m.track[i] + ")");
    row("start", "+" + fmtDur(m.start[i] - m.t0) + "  (" + fmtWall(origin + m.start[i] / 1e6) + ")");
    row("duration", isInstant(m, i) && m.dur[i] === 0 ? "0 (instant)" : fmtDur(m.dur[i]));
    row("self time", fmtDur(m.self[i]));
    row("children", fmtInt(m.childOff[i + 1] - m.childOff[i]));
    if (m.subTokens[i] > 0 || m.subCost[i] > 0) row("subtree", fmtInt(m.subTokens[i]) + " tokens, " + (m.subCost[i] > 0 ? fmtCost(m.subCost[i]) : "no priced call"));
    if (m.stepOf[i] >= 0 && m.stepOf[i] !== i) row("step", spanButton(app, m.stepOf[i]));
    box.appendChild(table);

    box.appendChild(el("h3", "", "metadata"));
    var meta = metadataOf(m, i);
    box.appendChild(meta ? el("pre", "json", JSON.stringify(meta, null, 2)) : el("p", "empty", "none"));

    var evs = m.eventsOf.get(i) || [];
    box.appendChild(el("h3", "", "events (" + evs.length + ")"));
    if (!evs.length) box.appendChild(el("p", "empty", "none"));
    evs.forEach(function (e) {
      var unit = m.data.time_unit_ns || 1;
      var t = el("table");
      var tr = el("tr");
      tr.appendChild(el("td", "", "+" + fmtDur(e[2] * unit)));
      tr.appendChild(el("td", "", m.strings[e[1]]));
      t.appendChild(tr);
      box.appendChild(t);
      if (e.length > 3 && e[3] !== null) box.appendChild(el("pre", "json", JSON.stringify(e[3], null, 2)));
    });

    var links = m.linksOf.get(i) || [];
    box.appendChild(el("h3", "", "links (" + links.length + ")"));
    if (!links.length) box.appendChild(el("p", "empty", "none"));
    links.forEach(function (l) {
      var traceId = m.strings[l[1]], sid = l[2];
      var local = traceId === m.traceId ? m.indexOf(Number(typeof sid === "object" && sid ? sid.rawJSON : sid)) : -1;
      var p = el("div", "link-row");
      if (local >= 0) {
        var b = spanButton(app, local, "→ span " + m.id[local] + ": ");
        b.dataset.linkTarget = String(m.id[local]);
        p.appendChild(b);
      } else {
        p.appendChild(el("span", "", "span " + String(sid) + " of " + (traceId === m.traceId ? "this trace (not in this report)" : traceId)));
      }
      box.appendChild(p);
      if (l.length > 3 && l[3] !== null) box.appendChild(el("pre", "json", JSON.stringify(l[3], null, 2)));
    });
  }

  function kindBadge(m, k) {
    var b = el("span", "kind", m.kindName[k]);
    b.style.background = m.kindColor[k];
    return b;
  }

  /** A button that selects span i; its label is text only. */
  function spanButton(app, i, prefix) {
    var m = app.m;
    var b = el("button", "link", (prefix || "") + m.kindName[m.kind[i]] + " " + m.strings[m.name[i]] + (prefix ? "" : " (" + m.id[i] + ")"));
    b.type = "button";
    b.addEventListener("click", function () { app.select(i, "link"); });
    return b;
  }

  // ---- tree (virtualized) ---------------------------------------------------------

  /** The summary tree: only the rows in view exist in the DOM. */
  function TreeView(app) {
    this.app = app;
    this.m = app.m;
    this.box = document.getElementById("tree");
    this.spacer = document.getElementById("tree-spacer");
    this.expanded = new Uint8Array(this.m.n);
    this.rows = new Int32Array(64);
    this.count = 0;
    this.pool = [];
    this.match = null;
    this.expandInitially();
    var self = this;
    this.box.addEventListener("scroll", function () { self.render(); });
    this.box.addEventListener("click", function (ev) {
      var rowEl = ev.target.closest(".tree-row");
      if (!rowEl) return;
      var i = Number(rowEl.dataset.index);
      if (ev.target.classList.contains("toggle")) self.toggle(i);
      else app.select(i, "tree");
    });
  }
  TreeView.prototype.childCount = function (i) {
    return this.m.childOff[i + 1] - this.m.childOff[i];
  };
  /** Opens the top levels breadth-first while the tree stays short. */
  TreeView.prototype.expandInitially = function () {
    var m = this.m, frontier = m.roots.slice(), visible = frontier.length, limit = 400;
    // Roots always open (rows are virtual, so a wide root costs nothing), then level by level.
    if (frontier.length <= 100) {
      var next0 = [];
      frontier.forEach(function (r) {
        if (this.childCount(r) > 0 && visible + this.childCount(r) <= 50000) {
          this.expanded[r] = 1;
          visible += this.childCount(r);
          for (var c = m.childOff[r]; c < m.childOff[r + 1]; c++) next0.push(m.childList[c]);
        }
      }, this);
      if (next0.length) frontier = next0;
    }
    while (frontier.length) {
      var next = [];
      for (var f = 0; f < frontier.length; f++) {
        var i = frontier[f], cc = this.childCount(i);
        if (!cc) continue;
        if (visible + cc > limit) { frontier = []; next = []; break; }
        this.expanded[i] = 1;
        visible += cc;
        for (var c = m.childOff[i]; c < m.childOff[i + 1]; c++) next.push(m.childList[c]);
      }
      frontier = next;
    }
    this.rebuild();
  };
  /** The list of visible rows: a depth-first walk through expanded nodes. */
  TreeView.prototype.rebuild = function () {
    var m = this.m, stack = [], count = 0, rows = this.rows;
    for (var r = m.roots.length - 1; r >= 0; r--) stack.push(m.roots[r]);
    while (stack.length) {
      var i = stack.pop();
      if (count === rows.length) { var grown = new Int32Array(rows.length * 2); grown.set(rows); rows = grown; }
      rows[count++] = i;
      if (this.expanded[i]) for (var c = m.childOff[i + 1] - 1; c >= m.childOff[i]; c--) stack.push(m.childList[c]);
    }
    this.rows = rows;
    this.count = count;
    this.spacer.style.height = count * TREE_ROW_H + "px";
    this.render();
  };
  TreeView.prototype.toggle = function (i) {
    if (!this.childCount(i)) return;
    this.expanded[i] ^= 1;
    this.rebuild();
  };
  TreeView.prototype.reveal = function (i) {
    var m = this.m, changed = false;
    for (var p = m.parent[i], guard = 0; p >= 0 && guard < m.n; p = m.parent[p], guard++) {
      if (!this.expanded[p]) { this.expanded[p] = 1; changed = true; }
    }
    if (changed) this.rebuild();
    var pos = -1;
    for (var k = 0; k < this.count; k++) if (this.rows[k] === i) { pos = k; break; }
    if (pos < 0) return;
    var top = pos * TREE_ROW_H, view = this.box.clientHeight;
    if (top < this.box.scrollTop || top + TREE_ROW_H > this.box.scrollTop + view) this.box.scrollTop = Math.max(0, top - view / 3);
    this.render();
  };
  TreeView.prototype.rowElement = function (k) {
    while (this.pool.length <= k) {
      var row = el("div", "tree-row");
      var name = el("div", "name");
      name.appendChild(el("span", "toggle"));
      name.appendChild(el("span", "kind"));
      name.appendChild(el("span", "label"));
      row.appendChild(name);
      for (var c = 0; c < 4; c++) row.appendChild(el("div", "num"));
      this.box.appendChild(row);
      this.pool.push(row);
    }
    return this.pool[k];
  };
  TreeView.prototype.render = function () {
    var m = this.m, first = Math.floor(this.box.scrollTop / TREE_ROW_H);
    var visible = Math.ceil((this.box.clientHeight || 300) / TREE_ROW_H) + 2, k;
    for (k = 0; k < visible; k++) {
      var pos = first + k, row = this.rowElement(k);
      if (pos >= this.count) { row.hidden = true; continue; }
      var i = this.rows[pos];
      row.hidden = false;
      row.style.top = pos * TREE_ROW_H + "px";
      row.dataset.index = String(i);
      row.classList.toggle("selected", i === this.app.selected);
      row.classList.toggle("match", !!(this.match && this.match[i]));
      var name = row.firstChild, cc = this.childCount(i);
      name.style.paddingLeft = Math.min(m.treeDepth[i], 40) * 14 + "px";
      name.childNodes[0].textContent = cc ? (this.expanded[i] ? "▾" : "▸") : "";
      var badge = name.childNodes[1];
      badge.textContent = m.kindName[m.kind[i]];
      badge.style.background = m.kindColor[m.kind[i]];
      name.childNodes[2].textContent = m.strings[m.name[i]];
      row.childNodes[1].textContent = fmtDur(m.dur[i]);
      row.childNodes[2].textContent = fmtDur(m.self[i]);
      row.childNodes[3].textContent = m.subTokens[i] > 0 ? fmtInt(m.subTokens[i]) : "";
      row.childNodes[4].textContent = m.subCost[i] > 0 ? fmtCost(m.subCost[i]) : "";
    }
    for (; k < this.pool.length; k++) this.pool[k].hidden = true;
  };

  // ---- LLM view: tables and the token flame graph --------------------------------

  function renderLLM(app) {
    var m = app.m, box = document.getElementById("tab-llm"), t = m.totals;
    clear(box);
    box.appendChild(el("p", "", fmtInt(t.calls) + " LLM calls, " + fmtInt(t.input) + " input, " + fmtInt(t.output) +
      " output, " + fmtInt(t.cacheRead) + " cache read, " + fmtInt(t.cacheWrite) + " cache write tokens, " + fmtCost(t.cost) +
      (t.unpriced ? " (" + fmtInt(t.unpriced) + " unpriced calls)" : "")));

    var byModel = new Map();
    m.llm.forEach(function (u) {
      var key = u.model || "(no model)";
      var g = byModel.get(key);
      if (!g) byModel.set(key, g = { model: key, provider: u.provider, calls: 0, input: 0, output: 0, cacheRead: 0, cacheWrite: 0, tokens: 0, cost: 0, unpriced: 0, unpricedSpans: [] });
      addUsage(g, u);
      if (u.cost === null) { g.unpriced++; if (g.unpricedSpans.length < 12) g.unpricedSpans.push(u.i); }
    });
    var models = Array.from(byModel.values()).sort(function (a, b) { return b.tokens - a.tokens; });
    box.appendChild(el("div", "section-title", "By model"));
    box.appendChild(usageTable(["model", "provider"], models, function (g) { return [g.model, g.provider]; }, function (g) { return [g.unpriced ? fmtInt(g.unpriced) : ""]; }, ["unpriced"]));

    box.appendChild(el("div", "section-title", "By step (nearest enclosing step span)"));
    var bySteps = new Map();
    m.llm.forEach(function (u) {
      var s = m.stepOf[u.i];
      var g = bySteps.get(s);
      if (!g) bySteps.set(s, g = { step: s, calls: 0, input: 0, output: 0, cacheRead: 0, cacheWrite: 0, tokens: 0, cost: 0, unpriced: 0 });
      addUsage(g, u);
    });
    var steps = Array.from(bySteps.values()).sort(function (a, b) {
      return (a.step < 0 ? Infinity : m.start[a.step]) - (b.step < 0 ? Infinity : m.start[b.step]);
    });
    var shown = steps.slice(0, 300);
    box.appendChild(usageTable(["step"], shown, function (g) {
      return [g.step < 0 ? "(no step)" : spanButton(app, g.step)];
    }));
    if (steps.length > shown.length) box.appendChild(el("p", "muted", (steps.length - shown.length) + " more steps not listed."));

    box.appendChild(el("div", "section-title", "Unpriced calls (llm_call spans without cost_usd)"));
    var unpriced = models.filter(function (g) { return g.unpriced > 0; });
    if (!unpriced.length) box.appendChild(el("p", "empty", "none: every call has a cost"));
    else {
      var table = el("table", "grid unpriced");
      var head = el("tr");
      ["model", "calls", "tokens", "spans"].forEach(function (h) { head.appendChild(el("th", "", h)); });
      table.appendChild(head);
      unpriced.forEach(function (g) {
        var tr = el("tr");
        tr.appendChild(el("td", "", g.model));
        tr.appendChild(el("td", "", fmtInt(g.unpriced)));
        var tok = 0;
        m.llm.forEach(function (u) { if ((u.model || "(no model)") === g.model && u.cost === null) tok += u.tokens; });
        tr.appendChild(el("td", "", fmtInt(tok)));
        var td = el("td", "text");
        g.unpricedSpans.forEach(function (i, k) {
          if (k) td.appendChild(document.createTextNode(", "));
          var b = el("button", "link", String(m.id[i]));
          b.type = "button";
          b.addEventListener("click", function () { app.select(i, "link"); });
          td.appendChild(b);
        });
        if (g.unpriced > g.unpricedSpans.length) td.appendChild(document.createTextNode(", …"));
        tr.appendChild(td);
        table.appendChild(tr);
      });
      box.appendChild(table);
    }

    var bar = el("div", "flame-bar");
    bar.appendChild(el("span", "section-title", "Token flame graph"));
    var bTok = el("button", "active", "tokens"), bCost = el("button", "", "cost");
    bTok.type = bCost.type = "button";
    bTok.dataset.metric = "tokens"; bCost.dataset.metric = "cost";
    bar.appendChild(bTok);
    bar.appendChild(bCost);
    bar.appendChild(el("span", "muted", "click a frame to zoom, click the top frame to zoom out"));
    box.appendChild(bar);
    var canvas = el("canvas", "flame");
    box.appendChild(canvas);
    app.flame = new Flame(app, canvas);
    [bTok, bCost].forEach(function (b) {
      b.addEventListener("click", function () {
        bTok.classList.toggle("active", b === bTok);
        bCost.classList.toggle("active", b === bCost);
        app.flame.setMetric(b.dataset.metric);
      });
    });
  }

  function addUsage(g, u) {
    g.calls++; g.input += u.input; g.output += u.output; g.cacheRead += u.cacheRead; g.cacheWrite += u.cacheWrite;
    g.tokens += u.tokens;
    if (u.cost !== null) g.cost += u.cost;
  }

  function usageTable(firstHeads, groups, firstCells, extraCells, extraHeads) {
    var table = el("table", "grid");
    var head = el("tr");
    firstHeads.concat(["calls", "input", "output", "cache read", "cache write", "tokens", "cost"], extraHeads || [])
      .forEach(function (h) { head.appendChild(el("th", "", h)); });
    table.appendChild(head);
    groups.forEach(function (g) {
      var tr = el("tr");
      firstCells(g).forEach(function (c) {
        var td = el("td", "text");
        if (c instanceof Node) td.appendChild(c); else td.textContent = c;
        tr.appendChild(td);
      });
      [fmtInt(g.calls), fmtInt(g.input), fmtInt(g.output), fmtInt(g.cacheRead), fmtInt(g.cacheWrite), fmtInt(g.tokens), fmtCost(g.cost)]
        .concat(extraCells ? extraCells(g) : [])
        .forEach(function (c) { tr.appendChild(el("td", "", c)); });
      table.appendChild(tr);
    });
    return table;
  }

  /**
   * The token flame graph: an icicle of the span tree where calls with the
   * same kind and name under the same path merge, weighted by tokens or cost.
   */
  function Flame(app, canvas) {
    this.app = app; this.m = app.m; this.canvas = canvas; this.ctx = canvas.getContext("2d");
    this.metric = "tokens";
    this.ROW_H = 18;
    this.boxes = [];
    this.build();
    var self = this;
    canvas.addEventListener("pointermove", function (ev) {
      var node = self.hit(ev);
      if (node < 0) { app.hideTooltip(); return; }
      var total = self.total[0] || 1;
      app.showText(self.label(node) + "\n" + self.fmt(self.total[node]) + " (" + (100 * self.total[node] / total).toFixed(1) + "%)", ev.clientX, ev.clientY);
    });
    canvas.addEventListener("pointerleave", function () { app.hideTooltip(); });
    canvas.addEventListener("click", function (ev) {
      var node = self.hit(ev);
      if (node < 0) return;
      self.focus = node === self.focus && node !== 0 ? self.parentN[node] : node;
      self.draw();
    });
  }
  Flame.prototype.fmt = function (v) {
    return this.metric === "tokens" ? fmtInt(v) + " tokens" : fmtCost(v);
  };
  Flame.prototype.setMetric = function (metric) {
    this.metric = metric;
    this.build();
    this.draw();
  };
  Flame.prototype.build = function () {
    var m = this.m, sub = this.metric === "tokens" ? m.subTokens : m.subCost;
    var nodeOf = new Int32Array(m.n).fill(-1);
    var parentN = [-1], kindN = [-1], nameN = [-1], total = [0], kids = [[]], maps = [new Map()], depthN = [0];
    for (var k = 0; k < m.n; k++) {
      var i = m.preorder[k];
      if (!(sub[i] > 0)) continue;
      var p = m.parent[i], pn = p >= 0 && nodeOf[p] >= 0 ? nodeOf[p] : 0;
      var key = m.kind[i] * 4294967296 + m.name[i];
      var c = maps[pn].get(key);
      if (c === undefined) {
        c = parentN.length;
        parentN.push(pn); kindN.push(m.kind[i]); nameN.push(m.name[i]); total.push(0); kids.push([]); maps.push(new Map()); depthN.push(depthN[pn] + 1);
        maps[pn].set(key, c);
        kids[pn].push(c);
      }
      nodeOf[i] = c;
      total[c] += sub[i];
      if (pn === 0) total[0] += sub[i];
    }
    kids.forEach(function (list) { list.sort(function (a, b) { return total[b] - total[a]; }); });
    this.parentN = parentN; this.kindN = kindN; this.nameN = nameN; this.total = total; this.kids = kids; this.depthN = depthN;
    this.maxDepth = depthN.reduce(function (a, b) { return Math.max(a, b); }, 0);
    this.focus = 0;
  };
  Flame.prototype.label = function (node) {
    if (node === 0) return "all";
    return this.m.kindName[this.kindN[node]] + " " + this.m.strings[this.nameN[node]];
  };
  Flame.prototype.draw = function () {
    var canvas = this.canvas, ctx = this.ctx, m = this.m;
    var width = canvas.getBoundingClientRect().width;
    if (!width) return; // hidden tab: drawn when shown
    var rows = Math.min(this.maxDepth + 1, 40), height = Math.max(3, rows) * this.ROW_H + 4;
    var dpr = window.devicePixelRatio || 1;
    canvas.style.height = height + "px";
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "11px " + getComputedStyle(document.body).fontFamily;
    ctx.textBaseline = "middle";
    this.boxes = [];
    if (!(this.total[0] > 0)) {
      ctx.fillStyle = "#6b7280";
      ctx.fillText(this.metric === "tokens" ? "No LLM tokens in this trace." : "No priced LLM calls in this trace.", 8, 12);
      return;
    }
    var charW = ctx.measureText("abcdefghijklmnopqrstuvwxyz").width / 26 || 6;
    var f = this.focus, chain = [];
    for (var a = f; a >= 0; a = this.parentN[a]) chain.unshift(a);
    var self = this;
    function box(node, x, w, depth) {
      if (depth >= rows || w < 0.5) return;
      var y = depth * self.ROW_H + 1;
      var color = node === 0 ? "#94a3b8" : m.kindColor[self.kindN[node]];
      ctx.fillStyle = color;
      ctx.globalAlpha = depth < chain.length - 1 ? 0.6 : 1;
      ctx.fillRect(x, y, Math.max(0.5, w - 0.5), self.ROW_H - 2);
      ctx.globalAlpha = 1;
      if (w >= 1) self.boxes.push([x, y, w, node]);
      if (w > 30) {
        var text = self.label(node) + " " + self.fmt(self.total[node]);
        var maxChars = Math.floor((w - 6) / charW);
        if (text.length > maxChars) text = text.slice(0, Math.max(1, maxChars - 1)) + "…";
        ctx.fillStyle = "#fff";
        ctx.fillText(text, x + 3, y + self.ROW_H / 2 - 1);
      }
    }
    for (var d = 0; d < chain.length - 1; d++) box(chain[d], 0, width, d);
    (function layout(node, x, w, depth) {
      box(node, x, w, depth);
      var list = self.kids[node], cx = x, tot = self.total[node] || 1;
      for (var k = 0; k < list.length; k++) {
        var cw = w * self.total[list[k]] / tot;
        if (cw >= 0.5) layout(list[k], cx, cw, depth + 1);
        cx += cw;
      }
    })(f, 0, width, chain.length - 1);
  };
  Flame.prototype.hit = function (ev) {
    var r = this.canvas.getBoundingClientRect(), x = ev.clientX - r.left, y = ev.clientY - r.top;
    for (var k = this.boxes.length - 1; k >= 0; k--) {
      var b = this.boxes[k];
      if (x >= b[0] && x < b[0] + b[2] && y >= b[1] && y < b[1] + this.ROW_H) return b[3];
    }
    return -1;
  };

  // ---- search ------------------------------------------------------------------------

  /** Spans whose name, kind or metadata text contains the query (case-insensitive). */
  function searchSpans(m, query) {
    var q = query.trim().toLowerCase();
    if (!q) return null;
    if (!m.lowerStrings) m.lowerStrings = m.strings.map(function (s) { return String(s).toLowerCase(); });
    var nameHit = new Uint8Array(m.strings.length), kindHit = new Uint8Array(m.kindName.length), i;
    for (i = 0; i < m.lowerStrings.length; i++) if (m.lowerStrings[i].indexOf(q) >= 0) nameHit[i] = 1;
    for (i = 0; i < m.kindName.length; i++) if (m.kindName[i].toLowerCase().indexOf(q) >= 0) kindHit[i] = 1;
    var match = new Uint8Array(m.n), count = 0;
    for (i = 0; i < m.n; i++) if (nameHit[m.name[i]] || kindHit[m.kind[i]]) match[i] = 1;
    var meta = m.data.meta || [];
    if (!m.metaText) m.metaText = new Array(meta.length);
    for (var j = 0; j < meta.length; j++) {
      var e = meta[j];
      if (match[e[0]]) continue;
      var text = m.metaText[j];
      if (text === undefined) text = m.metaText[j] = JSON.stringify(metadataOf(m, e[0])).toLowerCase();
      if (text.indexOf(q) >= 0) match[e[0]] = 1;
    }
    for (i = 0; i < m.n; i++) count += match[i];
    return { match: match, count: count, query: query };
  }

  function renderResults(app, res) {
    var m = app.m, box = document.getElementById("tab-results");
    clear(box);
    if (!res) { box.appendChild(el("p", "empty", "Type in the search box to find spans by name, kind or metadata.")); return; }
    box.appendChild(el("p", "", fmtInt(res.count) + " spans match “" + res.query + "”" + (res.count > 500 ? " (first 500 listed)" : "")));
    var list = el("div", "results-list"), shown = 0;
    for (var k = 0; k < m.n && shown < 500; k++) {
      var i = m.order[k];
      if (!res.match[i]) continue;
      shown++;
      var b = el("button", "link");
      b.type = "button";
      b.dataset.spanId = String(m.id[i]);
      b.appendChild(kindBadge(m, m.kind[i]));
      b.appendChild(el("span", "result-name", m.strings[m.name[i]]));
      b.appendChild(el("span", "muted", (m.dur[i] === 0 ? "instant" : fmtDur(m.dur[i])) + " at +" + fmtDur(m.start[i] - m.t0) + " · span " + m.id[i]));
      b.addEventListener("click", (function (idx) { return function () { app.select(idx, "search"); }; })(i));
      list.appendChild(b);
    }
    box.appendChild(list);
  }

  // ---- the app: selection, tabs, keyboard, tooltip, test hook -------------------------

  function App(m) {
    this.m = m;
    this.selected = -1;
    this.search = null;
    this.tooltip = document.getElementById("tooltip");
    this.timeline = new Timeline(m, document.getElementById("timeline"), this);
    this.minimap = new Minimap(m, document.getElementById("minimap"), this.timeline);
    this.tree = new TreeView(this);
    this.flame = null;
  }
  App.prototype.select = function (i, source) {
    this.selected = i;
    renderDetails(this, i);
    if (i >= 0) {
      if (source !== "timeline") this.timeline.reveal(i);
      this.tree.reveal(i);
    }
    this.tree.render();
    this.timeline.requestDraw();
  };
  App.prototype.onViewChange = function () {
    this.minimap.draw(this.search ? this.search.match : null);
    var tl = this.timeline;
    document.getElementById("view-range").textContent = "+" + fmtDur(Math.max(0, tl.v0 - this.m.t0)) + " … +" + fmtDur(tl.v1 - this.m.t0);
  };
  App.prototype.runSearch = function (q) {
    this.search = searchSpans(this.m, q);
    var match = this.search ? this.search.match : null;
    this.timeline.match = match;
    this.tree.match = match;
    this.searchCursor = -1;
    document.getElementById("search-count").textContent = this.search ? fmtInt(this.search.count) + " matches" : "";
    renderResults(this, this.search);
    if (this.search) this.showTab("results");
    this.tree.render();
    this.timeline.requestDraw();
    return this.search ? this.search.count : 0;
  };
  /** Enter in the search box: select the next match in start order. */
  App.prototype.nextMatch = function () {
    if (!this.search || !this.search.count) return;
    var m = this.m, k = this.searchCursor;
    for (var step = 0; step < m.n; step++) {
      k = (k + 1) % m.n;
      if (this.search.match[m.order[k]]) { this.searchCursor = k; this.select(m.order[k], "search"); return; }
    }
  };
  App.prototype.showTab = function (name) {
    document.querySelectorAll(".tabs button").forEach(function (b) { b.classList.toggle("active", b.dataset.tab === name); });
    document.querySelectorAll(".tab").forEach(function (t) { t.classList.toggle("active", t.id === "tab-" + name); });
    if (name === "tree") this.tree.render();
    if (name === "llm" && this.flame) this.flame.draw();
  };
  App.prototype.showText = function (text, x, y) {
    var t = this.tooltip;
    t.textContent = text;
    t.hidden = false;
    var w = t.offsetWidth, h = t.offsetHeight;
    t.style.left = Math.min(x + 14, window.innerWidth - w - 4) + "px";
    t.style.top = (y + 16 + h > window.innerHeight ? y - h - 8 : y + 16) + "px";
  };
  App.prototype.showTooltip = function (i, x, y) {
    var m = this.m;
    var lines = [m.strings[m.name[i]], m.kindName[m.kind[i]] + " · " + (m.dur[i] === 0 ? "instant" : fmtDur(m.dur[i])) + " · self " + fmtDur(m.self[i])];
    if (m.subTokens[i] > 0) lines.push(fmtInt(m.subTokens[i]) + " tokens · " + fmtCost(m.subCost[i]));
    this.showText(lines.join("\n"), x, y);
  };
  App.prototype.hideTooltip = function () {
    this.tooltip.hidden = true;
  };
  App.prototype.resize = function () {
    this.timeline.resize();
    this.minimap.resize();
    this.timeline.draw();
    this.tree.render();
    if (this.flame) this.flame.draw();
  };

  function bindUI(app) {
    var tl = app.timeline;
    bindTimeline(tl, app);
    document.querySelectorAll(".tabs button").forEach(function (b) {
      b.addEventListener("click", function () { app.showTab(b.dataset.tab); });
    });
    var input = document.getElementById("search"), timer = 0;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { app.runSearch(input.value); }, 150);
    });
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") {
        clearTimeout(timer);
        if (!app.search || app.search.query !== input.value) app.runSearch(input.value);
        app.nextMatch();
      } else if (ev.key === "Escape") {
        input.value = "";
        app.runSearch("");
      }
    });
    document.getElementById("zoom-in").addEventListener("click", function () { tl.zoomAt(0.5, tl.width / 2); });
    document.getElementById("zoom-out").addEventListener("click", function () { tl.zoomAt(2, tl.width / 2); });
    document.getElementById("zoom-reset").addEventListener("click", function () { tl.resetView(); tl.requestDraw(); });
    document.addEventListener("keydown", function (ev) {
      var tag = ev.target && ev.target.tagName;
      if (tag === "INPUT" || tag === "TEXTAREA" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      var handled = true, rowH = tl.ROW_H;
      switch (ev.key) {
        case "+": case "=": tl.zoomAt(0.6, tl.width / 2); break;
        case "-": case "_": tl.zoomAt(1 / 0.6, tl.width / 2); break;
        case "0": tl.resetView(); tl.requestDraw(); break;
        case "ArrowLeft": tl.pan(-tl.width * 0.15, 0); break;
        case "ArrowRight": tl.pan(tl.width * 0.15, 0); break;
        case "ArrowUp": tl.pan(0, -rowH * 3); break;
        case "ArrowDown": tl.pan(0, rowH * 3); break;
        case "/": input.focus(); break;
        default: handled = false;
      }
      if (handled) ev.preventDefault();
    });
    var pending = false;
    function onResize() {
      if (pending) return;
      pending = true;
      requestAnimationFrame(function () { pending = false; app.resize(); });
    }
    if (typeof ResizeObserver === "function") new ResizeObserver(onResize).observe(document.getElementById("timeline-wrap"));
    window.addEventListener("resize", onResize);
  }

  /** window.__vmtraceReport: what tests and tools need to drive the page. */
  function exposeHook(app, timings) {
    var m = app.m;
    window.__vmtraceReport = {
      timings: timings,
      stats: function () {
        return { spans: m.n, tracks: m.tracks.length, rows: m.rowCount, llmCalls: m.totals.calls, tokens: m.totals.tokens, cost: m.totals.cost, unfinished: m.unfinished };
      },
      indexOf: function (id) { return m.indexOf(Number(id)); },
      /** Client (viewport) rectangle of the span with this id as drawn now, or null. */
      spanRect: function (id) {
        var i = m.indexOf(Number(id));
        if (i < 0) return null;
        var r = app.timeline.localRect(i);
        if (!r) return null;
        var c = app.timeline.canvas.getBoundingClientRect();
        return { x: c.left + r.x, y: c.top + r.y, width: r.w, height: r.h, cx: c.left + r.x + r.w / 2, cy: c.top + r.y + r.h / 2 };
      },
      reveal: function (id) {
        var i = m.indexOf(Number(id));
        if (i < 0) return false;
        app.timeline.reveal(i);
        app.timeline.draw();
        return true;
      },
      select: function (id) {
        var i = m.indexOf(Number(id));
        app.select(i, "hook");
        return i >= 0;
      },
      selectedId: function () { return app.selected >= 0 ? m.id[app.selected] : null; },
      search: function (q) { return app.runSearch(q); },
      matchIds: function (limit) {
        var out = [];
        if (!app.search) return out;
        for (var k = 0; k < m.n && out.length < (limit || 1000); k++) if (app.search.match[m.order[k]]) out.push(m.id[m.order[k]]);
        return out;
      },
      view: function () { return { v0: app.timeline.v0, v1: app.timeline.v1, scrollY: app.timeline.scrollY }; },
      /** Mean ms of `frames` timeline redraws at the current view (for benchmarks). */
      drawTime: function (frames) {
        var t = performance.now();
        for (var k = 0; k < (frames || 10); k++) app.timeline.draw();
        return (performance.now() - t) / (frames || 10);
      },
      /** Shows [fraction0, fraction1] of the run (0..1) on the timeline. */
      setView: function (f0, f1) {
        var tl = app.timeline, full = m.t1 - m.t0;
        tl.v0 = m.t0 + f0 * full; tl.v1 = m.t0 + f1 * full;
        tl.clampView();
        tl.draw();
      }
    };
  }

  function showError(err) {
    var box = document.getElementById("error");
    if (box) {
      box.hidden = false;
      box.textContent = "vmtrace report: " + (err && err.message ? err.message : String(err));
    }
    document.documentElement.dataset.ready = "error";
  }

  function main() {
    var t0 = performance.now(), timings = { scriptStart: t0 };
    var d = readData();
    timings.parse = performance.now() - t0;
    var t1 = performance.now();
    var m = decode(d);
    timings.decode = performance.now() - t1;
    derive(m, timings);
    timings.derive = performance.now() - t1 - timings.decode;
    renderHeader(m);
    renderLegend(m);
    var app = new App(m);
    renderDetails(app, -1);
    renderResults(app, null);
    renderLLM(app);
    bindUI(app);
    app.resize();
    exposeHook(app, timings);
    timings.total = performance.now() - t0;
    timings.readyAt = performance.now();
    document.documentElement.dataset.ready = "true";
  }

  try {
    main();
  } catch (err) {
    showError(err);
    throw err;
  }
})();
