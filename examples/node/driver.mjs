#!/usr/bin/env node
// A Symphony IPC implementation in plain Node.js (20+, no dependencies), served over the
// conformance driver protocol: one JSON request per line on stdin, one JSON response per line on
// stdout, logs on stderr. Written from spec/protocol.md and spec/driver/README.md.
//
// Profiles: envelope, codec-json, priority, ttl, versioning. MessagePack is not implemented: those
// requests are answered "skipped".
//
//   symphony-conformance run --impl "exec:node examples/node/driver.mjs"

import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline";

const DRIVER_PROTOCOL = 1;
const MAX_MESSAGE_SIZE = 16 * 1024 * 1024;
const MAX_DEPTH = 64; // payload and metadata values: ENV-014 asks for at least 32
const NS = 1_000_000_000n;
const U16 = 0xffff;
const U64 = 0xffff_ffff_ffff_ffffn;
const MIN_SECS = -62135596800n; // 0001-01-01T00:00:00Z
const MAX_SECS = 253402300799n; // 9999-12-31T23:59:59Z

// ------------------------------------------------------------------ errors (spec section 2)

const ERRORS = {
  INVALID_MESSAGE_TYPE: ["validation", true],
  MISSING_FIELD: ["validation", true],
  INVALID_ENDPOINT_ID: ["validation", true],
  INVALID_PRIORITY: ["validation", true],
  TTL_EXPIRED: ["expiry", true],
  INVALID_PROTOCOL_VERSION: ["version", false],
  INVALID_METADATA_KEY: ["validation", true],
  SERIALIZATION: ["serialization", true],
  UUID_PARSE: ["serialization", true],
  MESSAGE_TOO_LARGE: ["resource", true],
};

class ProtocolError extends Error {
  constructor(code, message, details) {
    super(message);
    this.code = code;
    this.details = details;
  }

  toWire() {
    const [category, recoverable] = ERRORS[this.code];
    const out = { code: this.code, category, recoverable, message: this.message };
    if (this.details) out.details = this.details;
    return out;
  }
}

const fail = (code, message, details) => {
  throw new ProtocolError(code, message, details);
};

// ------------------------------------------------------------------ JSON that keeps integers exact
//
// JSON.parse turns 18446744073709551615 into a double and 1.0 into 1, and accepts lone
// surrogates. This parser keeps safe integers as numbers, other integers as BigInt, and every
// number written with a fraction or exponent as a JsonFloat, so a float stays a float (a ttl of
// 1.0 is not an integer) and an integer stays exact (a priority of 2^64 is an out-of-range
// integer, INVALID_PRIORITY, not a float). Objects have no prototype,
// so "__proto__" is an ordinary key; a duplicated key keeps its last value (COD-007).

class JsonFloat {
  constructor(value) {
    this.value = value;
  }
}

class JsonSyntaxError extends Error {}

const I64_MIN = -(2n ** 63n);
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

function parseJson(text, { maxDepth = 512, loneSurrogates = false } = {}) {
  let i = 0;
  const n = text.length;
  const err = (what) => {
    throw new JsonSyntaxError(`${what} at offset ${i}`);
  };
  const ws = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else return;
    }
  };
  const string = () => {
    i++; // the opening quote
    let out = "";
    let start = i;
    for (;;) {
      if (i >= n) err("unterminated string");
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        break;
      }
      if (c < 0x20) err("control character in string");
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(start, i);
      const e = text[i + 1];
      i += 2;
      if (e === "u") {
        const hex = text.slice(i, i + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) err("bad \\u escape");
        out += String.fromCharCode(parseInt(hex, 16));
        i += 4;
      } else {
        const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }[e];
        if (simple === undefined) err("bad escape");
        out += simple;
      }
      start = i;
    }
    if (!loneSurrogates && LONE_SURROGATE.test(out)) err("lone surrogate in string");
    return out;
  };
  const number = () => {
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (m === null) err("unexpected character");
    i = NUMBER.lastIndex;
    const literal = m[0];
    if (m[1] === undefined && m[2] === undefined) {
      const big = BigInt(literal);
      const safe = big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER);
      return safe ? Number(big) : big;
    }
    const value = Number(literal);
    if (!Number.isFinite(value)) err("number out of the range of a double");
    return new JsonFloat(value);
  };
  const value = (depth) => {
    ws();
    const c = text[i];
    if (c === "{" || c === "[") {
      if (depth >= maxDepth) err(`nested deeper than ${maxDepth} levels`);
      i++;
      ws();
      if (c === "[") {
        const arr = [];
        if (text[i] === "]") {
          i++;
          return arr;
        }
        for (;;) {
          arr.push(value(depth + 1));
          ws();
          if (text[i] === ",") i++;
          else if (text[i] === "]") {
            i++;
            return arr;
          } else err("expected , or ]");
        }
      }
      const obj = Object.create(null);
      if (text[i] === "}") {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') err("expected a member name");
        const key = string();
        ws();
        if (text[i] !== ":") err("expected :");
        i++;
        obj[key] = value(depth + 1);
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") {
          i++;
          return obj;
        } else err("expected , or }");
      }
    }
    if (c === '"') return string();
    if (text.startsWith("true", i)) {
      i += 4;
      return true;
    }
    if (text.startsWith("false", i)) {
      i += 5;
      return false;
    }
    if (text.startsWith("null", i)) {
      i += 4;
      return null;
    }
    return number();
  };
  const result = value(0);
  ws();
  if (i !== n) err("trailing characters after the value");
  return result;
}

function floatText(v) {
  if (Object.is(v, -0)) return "-0.0";
  const s = String(v);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

function toJson(v) {
  if (v === null) return "null";
  switch (typeof v) {
    case "boolean":
      return v ? "true" : "false";
    case "number":
      return Number.isInteger(v) ? String(v) : floatText(v);
    case "bigint":
      return v.toString();
    case "string":
      return JSON.stringify(v);
    default:
      break;
  }
  if (v instanceof JsonFloat) return floatText(v.value);
  if (Array.isArray(v)) return `[${v.map(toJson).join(",")}]`;
  return `{${Object.keys(v)
    .map((k) => `${JSON.stringify(k)}:${toJson(v[k])}`)
    .join(",")}}`;
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof JsonFloat);
const isInteger = (v) => typeof v === "bigint" || (typeof v === "number" && Number.isInteger(v));
const has = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

// ------------------------------------------------------------------ time (nanoseconds as BigInt)

function daysFromCivil(y, m, d) {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(z) {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

const daysInMonth = (y, m) =>
  [31, (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1];

// RFC 3339, with the tolerated variants of COD-006: offsets, lower-case t and z, 1 to 9 fraction
// digits, a second of 60 (counted as the next minute's first second, as the reference does).
// Always re-encoded in the canonical form.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

function parseTimestamp(text) {
  if (typeof text !== "string") fail("SERIALIZATION", `timestamp: expected a string, got ${typeName(text)}`);
  const m = RFC3339.exec(text);
  if (m === null) fail("SERIALIZATION", `timestamp: ${JSON.stringify(text)} is not an RFC 3339 date-time`);
  const [y, mo, d, hh, mi, ss] = m.slice(1, 7).map(Number);
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || hh > 23 || mi > 59 || ss > 60) {
    fail("SERIALIZATION", `timestamp: ${JSON.stringify(text)} is not a valid date and time`);
  }
  let secs = BigInt(daysFromCivil(y, mo, d)) * 86400n + BigInt(hh * 3600 + mi * 60 + ss);
  if (m[8] !== undefined) {
    const [oh, om] = [Number(m[9]), Number(m[10])];
    if (oh > 23 || om > 59) fail("SERIALIZATION", `timestamp: ${JSON.stringify(text)} has an invalid offset`);
    const offset = BigInt(oh * 3600 + om * 60);
    secs += m[8] === "+" ? -offset : offset;
  }
  if (secs < MIN_SECS || secs > MAX_SECS) fail("SERIALIZATION", `timestamp: ${JSON.stringify(text)} is outside years 0001-9999`);
  const frac = m[7] === undefined ? 0n : BigInt(m[7].padEnd(9, "0"));
  return secs * NS + frac;
}

function formatTimestamp(ns) {
  let secs = ns / NS;
  let frac = ns % NS;
  if (frac < 0n) {
    frac += NS;
    secs -= 1n;
  }
  if (secs < MIN_SECS || secs > MAX_SECS) fail("SERIALIZATION", `timestamp ${ns} ns is outside years 0001-9999`);
  const days = Number(secs / 86400n - (secs % 86400n < 0n ? 1n : 0n));
  const sod = Number(secs - BigInt(days) * 86400n);
  const [y, mo, d] = civilFromDays(days);
  const p = (v, w = 2) => String(v).padStart(w, "0");
  const base = `${p(y, 4)}-${p(mo)}-${p(d)}T${p(Math.floor(sod / 3600))}:${p(Math.floor(sod / 60) % 60)}:${p(sod % 60)}`;
  if (frac === 0n) return `${base}Z`;
  if (frac % 1_000_000n === 0n) return `${base}.${p(frac / 1_000_000n, 3)}Z`;
  if (frac % 1000n === 0n) return `${base}.${p(frac / 1000n, 6)}Z`;
  return `${base}.${p(frac, 9)}Z`;
}

// ------------------------------------------------------------------ the data model (spec section 1)

const MESSAGE_TYPES = ["Request", "Response", "Event", "Error", "Heartbeat"];
const ENDPOINT = /^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$/;
const METADATA_KEY = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID_LENIENT = /^[0-9a-fA-F]{8}(-?)[0-9a-fA-F]{4}\1[0-9a-fA-F]{4}\1[0-9a-fA-F]{4}\1[0-9a-fA-F]{12}$/;

function typeName(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (v instanceof JsonFloat || typeof v === "bigint") return "number";
  return typeof v;
}

function parseUuid(value, field) {
  if (typeof value === "string") {
    if (UUID.test(value)) return value;
    if (UUID_LENIENT.test(value)) {
      const h = value.replaceAll("-", "").toLowerCase();
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    }
  }
  return fail("UUID_PARSE", `${field}: ${toJson(value ?? null).slice(0, 60)} is not a UUID`, { field });
}

function checkType(value) {
  if (typeof value !== "string") fail("SERIALIZATION", `message_type: expected a string, got ${typeName(value)}`);
  if (!MESSAGE_TYPES.includes(value)) {
    fail("INVALID_MESSAGE_TYPE", `message_type: ${JSON.stringify(value)} is not a message type`, { value });
  }
  return value;
}

function checkEndpoint(value, field) {
  if (typeof value !== "string") fail("SERIALIZATION", `${field}: expected a string, got ${typeName(value)}`, { field });
  if (!ENDPOINT.test(value)) fail("INVALID_ENDPOINT_ID", `${field}: ${JSON.stringify(value)} is not a valid endpoint id`, { field });
  return value;
}

function checkUint(value, bound, field) {
  if (!isInteger(value) || BigInt(value) < 0n || BigInt(value) > bound) {
    fail("SERIALIZATION", `${field}: expected an integer in [0, ${bound}], got ${toJson(value).slice(0, 40)}`, { field });
  }
  return BigInt(value);
}

function checkPriority(value) {
  if (!isInteger(value)) fail("SERIALIZATION", `priority: expected an integer, got ${typeName(value)}`);
  if (BigInt(value) < -1000n || BigInt(value) > 1000n) {
    fail("INVALID_PRIORITY", `priority ${value} is outside [-1000, 1000]`, { priority: Number(value) });
  }
  return Number(value);
}

function checkTtl(value) {
  if (value === null || value === undefined) return null;
  if (!isObject(value)) fail("SERIALIZATION", `ttl: expected null or an object, got ${typeName(value)}`);
  if (!has(value, "secs")) fail("MISSING_FIELD", "missing required field 'ttl.secs'", { field: "ttl.secs" });
  const secs = checkUint(value.secs, U64, "ttl.secs");
  if (!has(value, "nanos")) fail("MISSING_FIELD", "missing required field 'ttl.nanos'", { field: "ttl.nanos" });
  const nanos = checkUint(value.nanos, NS - 1n, "ttl.nanos");
  return { secs, nanos };
}

function checkValue(value, depth) {
  if (typeof value === "bigint" && (value < I64_MIN || value > U64)) {
    fail("SERIALIZATION", `integer ${value} is outside [-2^63, 2^64-1]`); // COD-008 lets us reject it
  }
  if (value === null || typeof value !== "object" || value instanceof JsonFloat) return;
  if (depth >= MAX_DEPTH) fail("SERIALIZATION", `value nested deeper than ${MAX_DEPTH} levels`);
  for (const item of Array.isArray(value) ? value : Object.values(value)) checkValue(item, depth + 1);
}

function checkMetadata(metadata) {
  if (!isObject(metadata)) fail("SERIALIZATION", `metadata: expected an object, got ${typeName(metadata)}`);
  for (const key of Object.keys(metadata)) {
    if (!METADATA_KEY.test(key)) fail("INVALID_METADATA_KEY", `metadata key ${JSON.stringify(key)} is not valid`, { key });
    checkValue(metadata[key], 1);
  }
  return metadata;
}

function need(obj, key, where) {
  if (!has(obj, key)) fail("MISSING_FIELD", `missing required field '${where}${key}'`, { field: `${where}${key}` });
  return obj[key];
}

// The data form -> a checked message, faults reported in ERR-002's order.
function messageFromData(obj) {
  if (!isObject(obj)) fail("SERIALIZATION", `a message is an object, got ${typeName(obj)}`);
  const h = need(obj, "header", "");
  if (!isObject(h)) fail("SERIALIZATION", `header: expected an object, got ${typeName(h)}`);
  const id = parseUuid(need(h, "id", "header."), "id");
  const rawCid = has(h, "correlation_id") ? h.correlation_id : null; // COD-010
  const correlationId = rawCid === null ? null : parseUuid(rawCid, "correlation_id");
  const messageType = checkType(need(h, "message_type", "header."));
  const source = checkEndpoint(need(h, "source", "header."), "source");
  const target = checkEndpoint(need(h, "target", "header."), "target");
  const timestamp = parseTimestamp(need(h, "timestamp", "header."));
  const ttl = checkTtl(has(h, "ttl") ? h.ttl : null);
  const priority = checkPriority(need(h, "priority", "header."));
  const v = need(h, "version", "header.");
  if (!isObject(v)) fail("SERIALIZATION", `version: expected an object, got ${typeName(v)}`);
  const version = {
    major: Number(checkUint(need(v, "major", "version."), BigInt(U16), "version.major")),
    minor: Number(checkUint(need(v, "minor", "version."), BigInt(U16), "version.minor")),
  };
  const payload = need(obj, "payload", "");
  checkValue(payload, 0);
  const metadata = checkMetadata(need(obj, "metadata", ""));
  if (messageType === "Response" && correlationId === null) {
    fail("MISSING_FIELD", "a Response needs a correlation_id", { field: "correlation_id" });
  }
  return { id, correlationId, messageType, source, target, timestamp, ttl, priority, version, payload, metadata };
}

function messageToData(m) {
  return {
    header: {
      id: m.id,
      correlation_id: m.correlationId,
      message_type: m.messageType,
      source: m.source,
      target: m.target,
      timestamp: formatTimestamp(m.timestamp),
      ttl: m.ttl === null ? null : { secs: m.ttl.secs, nanos: m.ttl.nanos },
      priority: m.priority,
      version: { major: m.version.major, minor: m.version.minor },
    },
    payload: m.payload,
    metadata: m.metadata,
  };
}

// ------------------------------------------------------------------ the JSON codec (spec 6.1)

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }); // keep a BOM: it is an error

function decodeJson(bytes) {
  if (bytes.length > MAX_MESSAGE_SIZE) fail("MESSAGE_TOO_LARGE", `message is ${bytes.length} bytes, over ${MAX_MESSAGE_SIZE}`);
  let value;
  try {
    value = parseJson(UTF8.decode(bytes));
  } catch (e) {
    if (e instanceof JsonSyntaxError || e instanceof TypeError) fail("SERIALIZATION", `malformed JSON: ${e.message}`);
    throw e;
  }
  return messageFromData(value);
}

function encodeJson(message) {
  const bytes = Buffer.from(toJson(messageToData(message)), "utf8");
  if (bytes.length > MAX_MESSAGE_SIZE) fail("MESSAGE_TOO_LARGE", `encoded message is ${bytes.length} bytes, over ${MAX_MESSAGE_SIZE}`);
  return bytes;
}

// ------------------------------------------------------------------ operations

let clockNs = null; // null: the system clock
const now = () => clockNs ?? BigInt(Date.now()) * 1_000_000n;

function build(fields) {
  // Each field is checked as the builder's setter would, in wire order; then the missing ones.
  const cid = has(fields, "correlation_id") && fields.correlation_id !== null ? parseUuid(fields.correlation_id, "correlation_id") : null;
  const messageType = has(fields, "message_type") ? checkType(fields.message_type) : null;
  const source = has(fields, "source") ? checkEndpoint(fields.source, "source") : null;
  const target = has(fields, "target") ? checkEndpoint(fields.target, "target") : null;
  const ttl = has(fields, "ttl") ? checkTtl(fields.ttl) : null;
  const priority = has(fields, "priority") ? checkPriority(fields.priority) : 0;
  const payload = has(fields, "payload") ? fields.payload : null;
  checkValue(payload, 0);
  const metadata = has(fields, "metadata") ? checkMetadata(fields.metadata) : Object.create(null);
  for (const [name, value] of [["message_type", messageType], ["source", source], ["target", target]]) {
    if (value === null) fail("MISSING_FIELD", `missing required field '${name}'`, { field: name });
  }
  if (messageType === "Response" && cid === null) fail("MISSING_FIELD", "a Response needs a correlation_id", { field: "correlation_id" });
  return {
    id: randomUUID(), // version 4 from a CSPRNG (ENV-002)
    correlationId: cid,
    messageType,
    source,
    target,
    timestamp: now(),
    ttl,
    priority,
    version: { major: 1, minor: 0 },
    payload,
    metadata,
  };
}

function isExpired(message, at) {
  if (message.ttl === null) return false;
  return at - message.timestamp > message.ttl.secs * NS + message.ttl.nanos; // exact: BigInt (TTL-002, TTL-005)
}

class Skipped extends Error {}
class Errored extends Error {}

function jsonOnly(codec) {
  if (codec === "msgpack") throw new Skipped("this driver implements only the JSON codec");
  if (codec !== "json") throw new Errored(`unknown codec ${JSON.stringify(codec)}`);
}

const bytesOf = (b64) => Buffer.from(b64, "base64");

const COMMANDS = {
  hello(req) {
    if (req.driver_protocol !== DRIVER_PROTOCOL) throw new Errored(`driver_protocol ${req.driver_protocol} is not ${DRIVER_PROTOCOL}`);
    return {
      name: "symphony-ipc-node-example",
      version: "0.1.0",
      language: `javascript (node ${process.versions.node})`,
      spec_version: "1.0.0",
      driver_protocol: DRIVER_PROTOCOL,
      capabilities: { profiles: ["envelope", "codec-json", "priority", "ttl", "versioning"], codecs: ["json"] },
    };
  },
  clock(req) {
    clockNs = parseTimestamp(req.now);
    return {};
  },
  build(req) {
    return { message: messageToData(build(req.fields)) };
  },
  encode(req) {
    jsonOnly(req.codec);
    return { data_b64: encodeJson(messageFromData(req.message)).toString("base64") };
  },
  decode(req) {
    jsonOnly(req.codec);
    return { message: messageToData(decodeJson(bytesOf(req.data_b64))) };
  },
  receive(req) {
    jsonOnly(req.codec);
    const m = decodeJson(bytesOf(req.data_b64));
    if (m.version.major !== req.receiver_version.major) {
      fail("INVALID_PROTOCOL_VERSION", `incompatible protocol version ${m.version.major}.${m.version.minor}`, m.version);
    }
    if (isExpired(m, now())) fail("TTL_EXPIRED", `message ${m.id} expired`, { id: m.id });
    return { message: messageToData(m) };
  },
  order(req) {
    const prios = req.messages.map((m) => messageFromData(m).priority);
    const order = prios.map((_, i) => i).sort((a, b) => prios[b] - prios[a]); // stable: FIFO within a level
    return { order };
  },
  is_expired(req) {
    return { expired: isExpired(messageFromData(req.message), parseTimestamp(req.now)) };
  },
  is_compatible(req) {
    return { compatible: req.a.major === req.b.major };
  },
  expects_response(req) {
    return { expects_response: checkType(req.message_type) === "Request" };
  },
  shutdown() {
    return {};
  },
};

function handle(req) {
  const seq = req.seq;
  try {
    const command = has(COMMANDS, req.cmd) ? COMMANDS[req.cmd] : null;
    if (command === null) throw new Errored(`unknown command ${JSON.stringify(req.cmd)}`);
    return { seq, ok: true, result: command(req) };
  } catch (e) {
    if (e instanceof ProtocolError) return { seq, ok: false, error: e.toWire() };
    if (e instanceof Skipped) return { seq, skipped: { reason: e.message } };
    const message = e instanceof Errored ? e.message : `${e?.name ?? "Error"}: ${e?.message ?? e}`;
    const context = e instanceof Errored ? undefined : { stack: String(e?.stack ?? "").split("\n").slice(0, 6).join("\n") };
    return { seq, errored: context ? { message, context } : { message } };
  }
}

// ------------------------------------------------------------------ the driver loop

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
for await (const line of lines) {
  if (line.trim() === "") continue;
  let req;
  try {
    req = parseJson(line, { loneSurrogates: true });
  } catch (e) {
    console.error(`driver: request is not JSON (${e.message})`);
    process.exit(2);
  }
  process.stdout.write(`${toJson(handle(req))}\n`);
  if (req.cmd === "shutdown") break;
}
process.stdout.write("", () => process.exit(0)); // exit once the last line is flushed
