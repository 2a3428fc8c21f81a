#!/usr/bin/env node
// tests/otlp/verify.js: checks an OTLP/JSON trace export against the
// OpenTelemetry project's own protobuf definitions.
//
//   node tests/otlp/verify.js FILE          check FILE; exit 0 and print a summary line
//   node tests/otlp/verify.js --dump FILE   the same, and print the decoded message as
//                                           JSON on stdout (ids in hex, 64-bit integers
//                                           as decimal strings); everything else goes
//                                           to stderr
//   node tests/otlp/verify.js --serve       one process for many checks (the specs start
//                                           one per busted process: spec/helper.lua
//                                           helper.verify_otlp), protocol below
//
// FILE holds an ExportTraceServiceRequest in the OTLP/JSON encoding (the
// proto3 JSON mapping with OTLP's rules: lowerCamelCase field names, trace and
// span ids in hex rather than base64, enums as integers). The check:
//
//   1. FILE is valid UTF-8 and strict JSON (RFC 8259: no duplicate keys, no
//      lone surrogate escapes, no trailing text); numbers keep their text.
//   2. Every field is one the proto defines, with the JSON type the mapping
//      allows (64-bit integers as decimal strings or integral numbers, in
//      range; enums as known integers; ids as lowercase hex of the right size).
//   3. The object is converted (hex ids to bytes, integers to Long) and given to
//      the generated ExportTraceServiceRequest.fromObject and .verify, encoded
//      to protobuf binary and decoded back.
//   4. Every field of the decoded message is compared with the JSON input:
//      strings, booleans, integers (exact, through BigInt), doubles (the same
//      IEEE value as the JSON number text), enums, ids, nested arrays and
//      kvlists, events, links and status. A field absent from the JSON must
//      decode to its default.
//
// Each problem is printed as one line "MISMATCH <path>: <what>"; the exit
// status is 1 if there was any, 2 if the definitions are not installed or FILE
// cannot be read. The definitions are the generated protobufjs types that
// `@opentelemetry/otlp-transformer` 0.52.x ships, installed by
// `make build/npm/node_modules/@opentelemetry/otlp-transformer`.
// (VMTRACE_NPM_DIR names another npm prefix than build/npm.)
//
// --serve saves loading the definitions (most of the 0.2 s of CPU a start
// costs) for each check. It first writes "verify.js --serve: ready PID\n" on
// stdout, then reads requests from stdin, one a line: "check FILE" or
// "dump FILE" (FILE as the command line would get it, relative to the
// server's working directory). It answers each on stdout with what
// `node tests/otlp/verify.js [--dump] FILE` would have done:
//
//   reply STATUS N\n          the exit status, and N chunks of output in the
//   FD LENGTH\nBYTES          order the command would write them: FD 1 for
//   ...                       stdout, 2 for stderr, LENGTH bytes each
//
// An unexpected exception answers status 1 with the stack on stderr (the
// command would die of it with status 1). Definitions that cannot be loaded
// answer status 2 with the command's message, and are tried again at the next
// request. At end of file on stdin (the client closed the pipe or exited)
// the server exits with status 0.
"use strict";

const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

// A check that cannot be made: it ends with status 2 and the message on stderr.
class Fatal extends Error {}

// ---- the generated definitions ----------------------------------------------

const NPM_DIR = process.env.VMTRACE_NPM_DIR || path.resolve(__dirname, "../../build/npm");
const PKG_DIR = path.join(NPM_DIR, "node_modules/@opentelemetry/otlp-transformer");
const ROOT_JS = path.join(PKG_DIR, "build/src/generated/root.js");

// Set by load(), once it succeeded.
let pkgVersion, Long, Request, SCHEMA;

function load() {
  if (SCHEMA) return;
  if (!fs.existsSync(ROOT_JS)) {
    throw new Fatal(
      `verify.js: ${ROOT_JS} not found; run: make build/npm/node_modules/@opentelemetry/otlp-transformer\n`
    );
  }
  const version = JSON.parse(fs.readFileSync(path.join(PKG_DIR, "package.json"), "utf8")).version;
  const req = createRequire(ROOT_JS);
  const protobuf = req("protobufjs/minimal");
  if (!protobuf.util.Long) {
    protobuf.util.Long = req("long");
    protobuf.configure();
  }
  const root = req(ROOT_JS);
  const otel = root.opentelemetry.proto;
  const schema = makeSchema(otel);
  checkSchema(schema, version);
  pkgVersion = version;
  Long = protobuf.util.Long;
  Request = schema.ExportTraceServiceRequest.type;
  SCHEMA = schema;
}

// ---- the schema (mirrors opentelemetry/proto trace.proto, checked below) -----

// Field types: a message name, or one of the scalar names below; `rep: true`
// for repeated fields. AnyValue's members form a oneof.
const makeSchema = (otel) => ({
  ExportTraceServiceRequest: {
    type: otel.collector.trace.v1.ExportTraceServiceRequest,
    fields: { resourceSpans: { t: "ResourceSpans", rep: true } },
  },
  ResourceSpans: {
    type: otel.trace.v1.ResourceSpans,
    fields: {
      resource: { t: "Resource" },
      scopeSpans: { t: "ScopeSpans", rep: true },
      schemaUrl: { t: "string" },
    },
  },
  Resource: {
    type: otel.resource.v1.Resource,
    fields: {
      attributes: { t: "KeyValue", rep: true },
      droppedAttributesCount: { t: "uint32" },
    },
  },
  ScopeSpans: {
    type: otel.trace.v1.ScopeSpans,
    fields: {
      scope: { t: "InstrumentationScope" },
      spans: { t: "Span", rep: true },
      schemaUrl: { t: "string" },
    },
  },
  InstrumentationScope: {
    type: otel.common.v1.InstrumentationScope,
    fields: {
      name: { t: "string" },
      version: { t: "string" },
      attributes: { t: "KeyValue", rep: true },
      droppedAttributesCount: { t: "uint32" },
    },
  },
  Span: {
    type: otel.trace.v1.Span,
    fields: {
      traceId: { t: "id", size: 16, required: true },
      spanId: { t: "id", size: 8, required: true },
      traceState: { t: "string" },
      parentSpanId: { t: "id", size: 8 },
      name: { t: "string" },
      kind: { t: "enum", values: otel.trace.v1.Span.SpanKind },
      startTimeUnixNano: { t: "fixed64" },
      endTimeUnixNano: { t: "fixed64" },
      attributes: { t: "KeyValue", rep: true },
      droppedAttributesCount: { t: "uint32" },
      events: { t: "Event", rep: true },
      droppedEventsCount: { t: "uint32" },
      links: { t: "Link", rep: true },
      droppedLinksCount: { t: "uint32" },
      status: { t: "Status" },
    },
  },
  Event: {
    type: otel.trace.v1.Span.Event,
    fields: {
      timeUnixNano: { t: "fixed64" },
      name: { t: "string" },
      attributes: { t: "KeyValue", rep: true },
      droppedAttributesCount: { t: "uint32" },
    },
  },
  Link: {
    type: otel.trace.v1.Span.Link,
    fields: {
      traceId: { t: "id", size: 16, required: true },
      spanId: { t: "id", size: 8, required: true },
      traceState: { t: "string" },
      attributes: { t: "KeyValue", rep: true },
      droppedAttributesCount: { t: "uint32" },
    },
  },
  Status: {
    type: otel.trace.v1.Status,
    fields: {
      message: { t: "string" },
      code: { t: "enum", values: otel.trace.v1.Status.StatusCode },
    },
  },
  KeyValue: {
    type: otel.common.v1.KeyValue,
    fields: { key: { t: "string" }, value: { t: "AnyValue" } },
  },
  AnyValue: {
    type: otel.common.v1.AnyValue,
    oneof: true,
    fields: {
      stringValue: { t: "string" },
      boolValue: { t: "bool" },
      intValue: { t: "int64" },
      doubleValue: { t: "double" },
      arrayValue: { t: "ArrayValue" },
      kvlistValue: { t: "KeyValueList" },
      bytesValue: { t: "bytes" },
    },
  },
  ArrayValue: {
    type: otel.common.v1.ArrayValue,
    fields: { values: { t: "AnyValue", rep: true } },
  },
  KeyValueList: {
    type: otel.common.v1.KeyValueList,
    fields: { values: { t: "KeyValue", rep: true } },
  },
});

// The schema must list exactly the fields the generated types have: a newer or
// older proto would otherwise go unnoticed.
function checkSchema(schema, pkgVersion) {
  for (const [name, def] of Object.entries(schema)) {
    if (!def.type) throw new Fatal(`verify.js: the generated definitions have no ${name}\n`);
    const generated = Object.getOwnPropertyNames(def.type.prototype)
      .filter((k) => {
        const d = Object.getOwnPropertyDescriptor(def.type.prototype, k);
        return k !== "constructor" && !d.get && typeof d.value !== "function";
      })
      .sort();
    const ours = Object.keys(def.fields).sort();
    if (generated.join() !== ours.join()) {
      throw new Fatal(
        `verify.js: ${name} has fields ${generated.join(", ")} in @opentelemetry/otlp-transformer ` +
          `${pkgVersion}, the checker knows ${ours.join(", ")}\n`
      );
    }
  }
}

// ---- strict JSON that keeps number text --------------------------------------

class JNum {
  constructor(text) {
    this.text = text;
  }
}

function parseJson(text) {
  let i = 0;
  const fail = (what) => {
    const before = text.slice(0, i);
    const line = before.split("\n").length;
    throw new Error(`${what} at line ${line}, offset ${i}`);
  };
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const value = () => {
    ws();
    const c = text[i];
    if (c === "{") return object();
    if (c === "[") return array();
    if (c === '"') return string();
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    for (const [word, v] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    return fail(c === undefined ? "unexpected end of input" : `unexpected ${JSON.stringify(c)}`);
  };
  const object = () => {
    const o = Object.create(null);
    i++;
    ws();
    if (text[i] === "}") {
      i++;
      return o;
    }
    for (;;) {
      ws();
      if (text[i] !== '"') fail("expected a key");
      const k = string();
      if (Object.prototype.hasOwnProperty.call(o, k)) fail(`duplicate key ${JSON.stringify(k)}`);
      ws();
      if (text[i] !== ":") fail("expected ':'");
      i++;
      o[k] = value();
      ws();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "}") {
        i++;
        return o;
      }
      fail("expected ',' or '}'");
    }
  };
  const array = () => {
    const a = [];
    i++;
    ws();
    if (text[i] === "]") {
      i++;
      return a;
    }
    for (;;) {
      a.push(value());
      ws();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "]") {
        i++;
        return a;
      }
      fail("expected ',' or ']'");
    }
  };
  const ESC = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
  const string = () => {
    let out = "";
    i++;
    for (;;) {
      const c = text[i];
      if (c === undefined) fail("unterminated string");
      if (c === '"') {
        i++;
        break;
      }
      if (c < " ") fail("raw control character in a string");
      if (c === "\\") {
        const e = text[i + 1];
        if (e === "u") {
          const h = text.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(h)) fail("bad \\u escape");
          out += String.fromCharCode(parseInt(h, 16));
          i += 6;
        } else if (ESC[e] !== undefined) {
          out += ESC[e];
          i += 2;
        } else {
          fail("bad escape");
        }
      } else {
        out += c;
        i++;
      }
    }
    // a lone surrogate (from \uXXXX escapes) has no UTF-8 encoding
    if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(out))
      fail(`string ${JSON.stringify(out)} holds a lone surrogate (not valid UTF-8)`);
    return out;
  };
  const number = () => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) fail("bad number");
    i += m[0].length;
    return new JNum(m[0]);
  };
  const v = value();
  ws();
  if (i !== text.length) fail("trailing text");
  return v;
}

// ---- problems ------------------------------------------------------------------

let problems; // reset by each check
const problem = (p, what) => problems.push(`${p || "(top)"}: ${what}`);
const show = (v) =>
  v instanceof JNum ? v.text : typeof v === "bigint" ? `${v}` : JSON.stringify(v);
const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof JNum);

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

// The exact integer a JSON value stands for (a decimal string or an integral
// number), or undefined.
function jsonInteger(v) {
  let s;
  if (v instanceof JNum) s = v.text;
  else if (typeof v === "string") s = v;
  else return undefined;
  if (/^-?(0|[1-9][0-9]*)$/.test(s)) return BigInt(s);
  // 1e3 or 1000.0 are integral numbers too (the proto3 JSON mapping accepts them)
  if (v instanceof JNum && /^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(s)) {
    const [, sign, int, frac = "", exp = "0"] = /^(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/.exec(s);
    const e = parseInt(exp, 10) - frac.length;
    let digits = BigInt(int + frac);
    if (e >= 0) return (sign ? -1n : 1n) * digits * 10n ** BigInt(e);
    const div = 10n ** BigInt(-e);
    if (digits % div !== 0n) return undefined;
    return (sign ? -1n : 1n) * (digits / div);
  }
  return undefined;
}

// The double a JSON value stands for, or undefined.
function jsonDouble(v) {
  if (v instanceof JNum) return Number(v.text); // correctly rounded
  if (v === "NaN") return NaN;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  return undefined;
}

const longToBig = (l, unsigned) => {
  if (l === null || l === undefined) return 0n;
  if (typeof l === "number") return BigInt(l);
  const u = (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0);
  return unsigned ? u : BigInt.asIntN(64, u);
};
const bigToLong = (b, unsigned) =>
  new Long(Number(BigInt.asIntN(32, b)), Number(BigInt.asIntN(32, b >> 32n)), unsigned);
const hex = (buf) => (buf ? Buffer.from(buf).toString("hex") : "");

// ---- step 2: JSON -> fromObject input ----------------------------------------

function convertField(def, jv, p) {
  switch (def.t) {
    case "string":
      if (typeof jv !== "string") return problem(p, `expected a string, got ${show(jv)}`);
      return jv;
    case "bool":
      if (typeof jv !== "boolean") return problem(p, `expected true or false, got ${show(jv)}`);
      return jv;
    case "uint32": {
      const n = jsonInteger(jv);
      if (!(jv instanceof JNum) || n === undefined || n < 0n || n > 0xffffffffn)
        return problem(p, `expected a uint32 number, got ${show(jv)}`);
      return Number(n);
    }
    case "int64":
    case "fixed64": {
      const n = jsonInteger(jv);
      const [lo, hi] = def.t === "int64" ? [INT64_MIN, INT64_MAX] : [0n, UINT64_MAX];
      if (n === undefined || n < lo || n > hi)
        return problem(p, `expected a ${def.t} as a decimal string, got ${show(jv)}`);
      return bigToLong(n, def.t === "fixed64");
    }
    case "double": {
      const d = jsonDouble(jv);
      if (d === undefined) return problem(p, `expected a number, got ${show(jv)}`);
      if (!Number.isFinite(d) && jv instanceof JNum)
        return problem(p, `number ${jv.text} is out of the double range`);
      return d;
    }
    case "enum": {
      // OTLP/JSON: enums are integers, not names
      const n = jsonInteger(jv);
      // (the generated enum object maps names to integers, and integers to names
      // through its prototype)
      if (!(jv instanceof JNum) || n === undefined || typeof def.values[Number(n)] !== "string")
        return problem(p, `expected one of the enum's integers, got ${show(jv)}`);
      return Number(n);
    }
    case "id": {
      // OTLP/JSON: ids are hex, not base64; an empty parentSpanId means none
      if (typeof jv !== "string") return problem(p, `expected a hex id, got ${show(jv)}`);
      if (jv === "" && !def.required) return Buffer.alloc(0);
      if (!new RegExp(`^[0-9a-f]{${2 * def.size}}$`).test(jv))
        return problem(p, `expected ${2 * def.size} lowercase hex digits, got ${show(jv)}`);
      if (/^0+$/.test(jv)) return problem(p, `an all-zero id is invalid`);
      return Buffer.from(jv, "hex");
    }
    case "bytes":
      if (typeof jv !== "string" || !/^[A-Za-z0-9+/_-]*=*$/.test(jv))
        return problem(p, `expected base64, got ${show(jv)}`);
      return Buffer.from(jv, "base64");
    default:
      return convert(def.t, jv, p);
  }
}

function convert(typeName, j, p) {
  const def = SCHEMA[typeName];
  if (!isObj(j)) return problem(p, `expected a ${typeName} object, got ${show(j)}`);
  const out = {};
  let members = 0;
  for (const k of Object.keys(j)) {
    const f = def.fields[k];
    const kp = p ? `${p}.${k}` : k;
    if (!f) {
      problem(kp, `${typeName} has no field ${JSON.stringify(k)}`);
      continue;
    }
    const jv = j[k];
    if (jv === null) continue; // null is the default value in the proto3 JSON mapping
    if (def.oneof) members++;
    if (f.rep) {
      if (!Array.isArray(jv)) {
        problem(kp, `expected an array, got ${show(jv)}`);
        continue;
      }
      out[k] = jv.map((e, n) => convertField(f, e, `${kp}[${n}]`));
    } else {
      out[k] = convertField(f, jv, kp);
    }
  }
  if (def.oneof && members > 1)
    problem(p, `${typeName} sets ${members} members of its oneof: ${Object.keys(j).join(", ")}`);
  for (const [k, f] of Object.entries(def.fields))
    if (f.required && (j[k] === undefined || j[k] === null))
      problem(p ? `${p}.${k}` : k, `missing (required)`);
  return out;
}

// ---- step 4: compare the decoded message with the JSON -----------------------

let compared; // reset by each check

function compareField(def, jv, dv, p) {
  compared++;
  const absent = jv === undefined || jv === null;
  let want, got;
  switch (def.t) {
    case "string":
      want = absent ? "" : jv;
      got = dv == null ? "" : dv;
      break;
    case "bool":
      want = absent ? false : jv;
      got = dv == null ? false : dv;
      break;
    case "uint32":
    case "enum":
      want = absent ? 0 : Number(jsonInteger(jv));
      got = dv == null ? 0 : dv;
      break;
    case "int64":
    case "fixed64":
      want = absent ? 0n : jsonInteger(jv);
      got = longToBig(dv, def.t === "fixed64");
      if (want !== got) problem(p, `JSON ${show(jv)}, decoded ${got}`);
      return;
    case "double":
      want = absent ? 0 : jsonDouble(jv);
      got = dv == null ? 0 : dv;
      if (!Object.is(want, got)) problem(p, `JSON ${show(jv)}, decoded ${show(got)}`);
      return;
    case "id":
      want = absent ? "" : jv;
      got = hex(dv);
      break;
    case "bytes":
      want = absent ? "" : Buffer.from(jv, "base64").toString("base64");
      got = dv ? Buffer.from(dv).toString("base64") : "";
      break;
    default:
      if (absent) {
        if (dv != null) problem(p, `absent from the JSON, decoded ${JSON.stringify(toDump(def.t, dv))}`);
      } else {
        compare(def.t, jv, dv, p);
      }
      return;
  }
  if (want !== got) problem(p, `JSON ${show(jv)}, decoded ${JSON.stringify(got)}`);
}

function compare(typeName, j, d, p) {
  const def = SCHEMA[typeName];
  if (d == null) return problem(p, `missing from the decoded message`);
  if (def.oneof) {
    const jm = Object.keys(j).filter((k) => j[k] !== null);
    const dm = d.value; // the generated oneof getter: the member that is set
    if ((jm[0] || undefined) !== (dm || undefined))
      return problem(p, `JSON sets ${jm.join(", ") || "no value"}, decoded sets ${dm || "no value"}`);
    if (dm) compareField(def.fields[dm], j[dm], d[dm], `${p}.${dm}`);
    return;
  }
  for (const [k, f] of Object.entries(def.fields)) {
    const kp = p ? `${p}.${k}` : k;
    const jv = j[k];
    if (f.rep) {
      const ja = Array.isArray(jv) ? jv : [];
      const da = d[k] || [];
      if (ja.length !== da.length) {
        problem(kp, `JSON has ${ja.length} items, decoded ${da.length}`);
        continue;
      }
      ja.forEach((e, n) => compareField(f, e, da[n], `${kp}[${n}]`));
    } else {
      compareField(f, jv, d[k], kp);
    }
  }
}

// ---- the dump: the decoded message as OTLP/JSON --------------------------------

function dumpField(def, v) {
  switch (def.t) {
    case "int64":
    case "fixed64":
      return longToBig(v, def.t === "fixed64").toString();
    case "double":
      return Number.isFinite(v) ? v : String(v);
    case "id":
      return hex(v);
    case "bytes":
      return Buffer.from(v).toString("base64");
    case "string":
    case "bool":
    case "uint32":
    case "enum":
      return v;
    default:
      return toDump(def.t, v);
  }
}

function toDump(typeName, m) {
  const def = SCHEMA[typeName];
  const out = {};
  for (const [k, f] of Object.entries(def.fields)) {
    const v = m[k];
    if (v === null || v === undefined) continue;
    if (f.rep) {
      if (v.length) out[k] = v.map((e) => dumpField(f, e));
    } else if (!(f.t === "id" && v.length === 0)) {
      out[k] = dumpField(f, v);
    }
  }
  return out;
}

// ---- a check ---------------------------------------------------------------------

// What `verify.js [--dump] FILE` does: { status, chunks: [[fd, text], ...] }.
function check(file, dump) {
  const chunks = [];
  const out = (s) => chunks.push([1, s]);
  const err = (s) => chunks.push([2, s]);
  const info = dump ? (s) => err(s + "\n") : (s) => out(s + "\n");
  try {
    load();
  } catch (e) {
    if (!(e instanceof Fatal)) throw e;
    err(e.message);
    return { status: 2, chunks };
  }
  problems = [];
  compared = 0;

  let bytes;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    err(`verify.js: cannot read ${file}: ${e.message}\n`);
    return { status: 2, chunks };
  }

  const finish = () => {
    for (const p of problems) out(`MISMATCH ${p}\n`);
    out(`verify.js: ${file}: ${problems.length} mismatches\n`);
    return { status: 1, chunks };
  };

  let text, json;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (e) {
    problem("", "the file is not valid UTF-8");
    return finish();
  }
  try {
    json = parseJson(text);
  } catch (e) {
    problem("", `not valid JSON: ${e.message}`);
    return finish();
  }

  const input = convert("ExportTraceServiceRequest", json, "");
  if (problems.length) return finish();

  let verr = Request.verify(input);
  if (verr) problem("", `ExportTraceServiceRequest.verify (JSON input): ${verr}`);
  const message = Request.fromObject(input);
  verr = Request.verify(message);
  if (verr) problem("", `ExportTraceServiceRequest.verify (message): ${verr}`);
  const wire = Request.encode(message).finish();
  const decoded = Request.decode(wire);
  compare("ExportTraceServiceRequest", json, decoded, "");
  if (problems.length) return finish();

  let scopes = 0, spans = 0, attributes = 0, events = 0, links = 0;
  for (const rs of decoded.resourceSpans) {
    attributes += rs.resource ? rs.resource.attributes.length : 0;
    for (const ss of rs.scopeSpans) {
      scopes++;
      for (const s of ss.spans) {
        spans++;
        attributes += s.attributes.length;
        events += s.events.length;
        links += s.links.length;
      }
    }
  }
  if (dump) out(JSON.stringify(toDump("ExportTraceServiceRequest", decoded)) + "\n");
  info(
    `verify.js: OK ${file}: ${decoded.resourceSpans.length} resource, ${scopes} scope, ${spans} spans, ` +
      `${attributes} attributes, ${events} events, ${links} links; ${compared} fields compared ` +
      `after a ${wire.length}-byte protobuf round trip (@opentelemetry/otlp-transformer ${pkgVersion})`
  );
  return { status: 0, chunks };
}

// ---- --serve -----------------------------------------------------------------------

function writeAll(fd, buf) {
  for (let off = 0; off < buf.length; ) off += fs.writeSync(fd, buf, off);
}

function answer(request) {
  const m = /^(check|dump) (.+)$/.exec(request);
  let r;
  if (!m) {
    r = { status: 2, chunks: [[2, `verify.js --serve: bad request ${JSON.stringify(request)}\n`]] };
  } else {
    try {
      r = check(m[2], m[1] === "dump");
    } catch (e) {
      // the command would die of it: status 1, the stack on stderr
      r = { status: 1, chunks: [[2, `verify.js: ${(e && e.stack) || e}\n`]] };
    }
  }
  const parts = [Buffer.from(`reply ${r.status} ${r.chunks.length}\n`)];
  for (const [fd, text] of r.chunks) {
    const b = Buffer.from(text, "utf8");
    parts.push(Buffer.from(`${fd} ${b.length}\n`), b);
  }
  writeAll(1, Buffer.concat(parts));
}

function serve() {
  // fd 0 and 1 are used synchronously (process.stdin and process.stdout are
  // never touched, so node leaves them in blocking mode)
  writeAll(1, Buffer.from(`verify.js --serve: ready ${process.pid}\n`));
  try {
    load(); // now rather than at the first request; tried again there if it failed
  } catch (e) {
    if (!(e instanceof Fatal)) throw e;
  }
  const buf = Buffer.alloc(65536);
  let pending = Buffer.alloc(0);
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    let n;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      if (e.code === "EAGAIN") {
        Atomics.wait(nap, 0, 0, 10);
        continue;
      }
      if (e.code === "EOF") break;
      throw e;
    }
    if (n === 0) break; // end of file: the client is gone
    pending = Buffer.concat([pending, buf.subarray(0, n)]);
    for (let nl; (nl = pending.indexOf(10)) >= 0; ) {
      const line = pending.subarray(0, nl).toString("utf8");
      pending = pending.subarray(nl + 1);
      answer(line);
    }
  }
  process.exit(0);
}

// ---- run ---------------------------------------------------------------------------

const args = process.argv.slice(2);
if (args.length === 1 && args[0] === "--serve") {
  serve();
} else {
  const dump = args.includes("--dump");
  const files = args.filter((a) => a !== "--dump");
  if (files.length !== 1 || files[0].startsWith("--")) {
    process.stderr.write("usage: node tests/otlp/verify.js [--dump] FILE\n");
    process.exit(2);
  }
  const r = check(files[0], dump);
  for (const [fd, text] of r.chunks) (fd === 1 ? process.stdout : process.stderr).write(text);
  process.exitCode = r.status;
}
