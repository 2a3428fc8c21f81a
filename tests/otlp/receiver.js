// tests/otlp/receiver.js: a test OTLP/HTTP receiver on 127.0.0.1 that records
// every request. Prints "listening PORT" once ready.
//   node tests/otlp/receiver.js --record FILE [--port N] [--fail N] [--status CODE]
//        [--retry-after SECONDS] [--hang] [--bodies DIR] [--raw-headers]
// --fail N: the first N requests get --status (default 503) instead of 200.
// --hang: accept requests and never answer.
// --fast: answer 200 at once, record nothing (for benchmarks; --record unused).
// --bodies DIR: also write each request's body, as sent (gunzipped when it came
//   gzipped), byte for byte to DIR/N.json (N as in the record), before answering.
// --raw-headers: also record rawHeaders, the request's header lines as sent
//   ([name, value, name, value, ...]: repeated headers are not merged).
// --short-body: answer 200 with a Content-Length of 100, send 10 bytes of the
//   body and close the connection (a 2xx whose body is cut short).
// Each request is one JSON line in FILE: {n, method, url, headers, status,
// gzip, body} with body the request's JSON (gunzipped), or bodyError.
//
//   node tests/otlp/receiver.js --serve
// One process for many receivers (spec/16 starts one per busted process, not
// one node per test). Commands on stdin, one a line, arguments as above
// separated by tabs: "start\tID\tARG\tARG..." opens a receiver and prints
// "listening ID PORT"; "stop\tID" closes it, its connections included, as if
// its process had ended, and prints "stopped ID". It exits at end of input.
'use strict';
const http = require('http');
const zlib = require('zlib');
const fs = require('fs');


const opt = (args, name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};

// A receiver with the command-line arguments args; calls ready(port).
function receiver(args, ready) {
  const record = opt(args, '--record');
  const port = Number(opt(args, '--port', '0'));
  let failLeft = Number(opt(args, '--fail', '0'));
  const failStatus = Number(opt(args, '--status', '503'));
  const retryAfter = opt(args, '--retry-after');
  const hang = args.includes('--hang');
  const fast = args.includes('--fast');
  const bodies = opt(args, '--bodies');
  const rawHeaders = args.includes('--raw-headers');
  const shortBody = args.includes('--short-body');
  const sockets = new Set();
  let n = 0;

  const server = http.createServer((req, res) => {
    if (fast) {
      req.on('data', () => {});
      req.on('end', () => { res.writeHead(200); res.end('{}'); });
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      n += 1;
      const raw = Buffer.concat(chunks);
      const gzip = (req.headers['content-encoding'] || '') === 'gzip';
      const entry = { n, method: req.method, url: req.url, headers: req.headers, gzip };
      if (rawHeaders) entry.rawHeaders = req.rawHeaders;
      try {
        const bytes = gzip ? zlib.gunzipSync(raw) : raw;
        if (bodies !== undefined) fs.writeFileSync(`${bodies}/${n}.json`, bytes);
        entry.body = JSON.parse(bytes.toString('utf8'));
      } catch (e) {
        entry.bodyError = String(e);
      }
      if (hang) {
        entry.status = 0;
        fs.appendFileSync(record, JSON.stringify(entry) + '\n');
        return; // never answer
      }
      let status = 200;
      if (failLeft > 0) {
        failLeft -= 1;
        status = failStatus;
      }
      entry.status = status;
      fs.appendFileSync(record, JSON.stringify(entry) + '\n');
      const headers = { 'Content-Type': 'application/json' };
      if (status !== 200 && retryAfter !== undefined) headers['Retry-After'] = retryAfter;
      if (shortBody && status === 200) {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '100' });
        res.write('{"partial"');
        setTimeout(() => res.socket.destroy(), 20);
        return;
      }
      res.writeHead(status, headers);
      res.end(status === 200 ? '{}' : '{"error":"try again"}');
    });
  });
  server.on('connection', (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  server.keepAliveTimeout = 60000;
  server.listen(port, '127.0.0.1', () => ready(server.address().port));
  // closes it as an ending process would: the port, then every connection
  return (done) => {
    server.close(() => done());
    for (const sock of sockets) sock.destroy();
  };
}

if (process.argv[2] === '--serve') {
  const open = new Map();
  let pending = '';
  const say = (line) => process.stdout.write(line + '\n');
  const command = (line) => {
    const [cmd, id, ...args] = line.split('\t');
    if (cmd === 'start' && id) {
      try {
        open.set(id, receiver(args, (port) => say(`listening ${id} ${port}`)));
      } catch (e) {
        say(`failed ${id} ${String(e).replace(/\n/g, ' ')}`);
      }
    } else if (cmd === 'stop' && open.has(id)) {
      const stop = open.get(id);
      open.delete(id);
      stop(() => say(`stopped ${id}`));
    } else if (cmd === 'stop') {
      say(`stopped ${id}`);
    } else if (line) {
      say(`unknown ${line}`);
    }
  };
  process.stdin.on('data', (chunk) => {
    pending += chunk.toString('utf8');
    let i;
    while ((i = pending.indexOf('\n')) >= 0) {
      command(pending.slice(0, i));
      pending = pending.slice(i + 1);
    }
  });
  process.stdin.on('end', () => process.exit(0));
} else {
  receiver(process.argv.slice(2), (port) => process.stdout.write(`listening ${port}\n`));
  process.on('SIGTERM', () => process.exit(0));
}
