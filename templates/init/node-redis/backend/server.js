// An Express backend that keeps its state in Redis, with no Redis client library: Node's `net` speaks
// the Redis protocol (RESP) for the one command it needs. The lesson of scaling out: the next request
// lands on another replica, so a session's state must live in a service every replica shares.
// GET / (page) and GET /api/count ({backend, session, count}) count one more visit for this session;
// GET /healthz answers 200 while the server is up. Environment: PORT (3000), REDIS_URL, SCALEOUT_ASSETS.
const express = require('express');
const crypto = require('crypto');
const net = require('net');
const os = require('os');

const app = express();
const port = Number(process.env.PORT || 3000);
const hostname = os.hostname();
const assets = JSON.parse(process.env.SCALEOUT_ASSETS || '{}');
const asset = (name) => assets[name] || `/static/${name}`;
const redisUrl = new URL(process.env.REDIS_URL || 'redis://redis:6379/0');

function redisCommand(...args) {
  return new Promise((resolve, reject) => {
    let payload = `*${args.length}\r\n`;
    for (const a of args) payload += `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`;
    const db = (redisUrl.pathname || '/0').replace(/^\//, '') || '0';
    if (db !== '0') payload = `*2\r\n$6\r\nSELECT\r\n$${db.length}\r\n${db}\r\n` + payload;
    const sock = net.createConnection({ host: redisUrl.hostname || 'redis', port: Number(redisUrl.port || 6379) });
    let buf = '';
    sock.setTimeout(2000, () => { sock.destroy(); reject(new Error('redis timed out')); });
    sock.on('error', (err) => reject(new Error(`redis unreachable: ${err.message}`)));
    sock.on('connect', () => sock.write(payload));
    sock.on('data', (chunk) => {
      buf += chunk.toString();
      const lines = buf.split('\r\n');
      const want = db !== '0' ? 2 : 1;
      if (lines.length <= want) return;
      const reply = lines[want - 1];
      sock.end();
      if (reply.startsWith(':')) resolve(Number(reply.slice(1)));
      else if (reply.startsWith('+')) resolve(reply.slice(1));
      else reject(new Error(reply));
    });
  });
}

function session(req, res) {
  const m = /(?:^|;\s*)session=([0-9a-f]{32})(?:;|$)/.exec(req.headers.cookie || '');
  if (m) return m[1];
  const sid = crypto.randomBytes(16).toString('hex');
  res.append('Set-Cookie', `session=${sid}; Path=/; HttpOnly; SameSite=Lax`);
  return sid;
}

app.disable('x-powered-by');
app.use((req, res, next) => {
  res.set('X-Backend-Id', hostname);
  res.set('Cache-Control', 'no-cache');
  next();
});

app.get('/healthz', (req, res) => res.type('text/plain').send('ok\n'));

app.get(['/', '/api/count'], async (req, res) => {
  const sid = session(req, res);
  let count;
  try {
    count = await redisCommand('INCR', `scaleout:visits:${sid}`);
  } catch (err) {
    return res.status(503).type('text/plain').send(`${err.message}\n`);
  }
  if (req.path === '/api/count') return res.json({ backend: hostname, session: sid, count });
  res.type('html').send(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>scaleout demo: shared state</title>
<link rel="stylesheet" href="${asset('app.css')}">
</head>
<body>
<main>
<h1>Hello from <span id="backend">${hostname}</span></h1>
<p>This session has been counted <strong id="count">${count}</strong> time(s), by whichever replica served it:
the count lives in Redis, shared by every replica.</p>
<p id="sw-status">Service worker: not registered yet.</p>
</main>
<script src="${asset('app.js')}" defer></script>
</body>
</html>
`);
});

const server = app.listen(port, () => console.log(`backend ${hostname} listening on :${port}, state in ${redisUrl}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('SIGINT', () => server.close(() => process.exit(0)));
