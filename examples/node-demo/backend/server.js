// The classic Express hello-world, made to show the spread through the load balancer:
// every response names the replica (X-Backend-Id header and body). GET /healthz answers 200.
// GET /ws is a WebSocket (RFC 6455, by hand on the server's 'upgrade' event): its first message says
// which replica it reached ("hello from backend-2"), then it echoes every message.
// Environment: PORT (default 3000), CPU_WORK_MS, SCALEOUT_ASSETS (see scaleout.yaml), SECRET_KEY (signs the
// session cookie and form tokens; every replica must share it), SCALEOUT_DEMO_BUG (off by default: see below).
const crypto = require('crypto');
const express = require('express');
const os = require('os');

const app = express();
const port = Number(process.env.PORT || 3000);
const hostname = os.hostname();
const cpuWorkMs = Number(process.env.CPU_WORK_MS || 0);
const assets = JSON.parse(process.env.SCALEOUT_ASSETS || '{}');
const asset = (name) => assets[name] || `/static/${name}`;

app.disable('x-powered-by');
app.use((req, res, next) => {
  res.set('X-Backend-Id', hostname);
  res.set('Cache-Control', 'no-cache');
  next();
});

app.get('/healthz', (req, res) => res.type('text/plain').send('ok\n'));

app.get('/', (req, res) => {
  const end = Date.now() + cpuWorkMs;
  while (Date.now() < end) { /* busy work, to make scaling visible */ }
  res.type('html').send(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>scaleout demo</title>
<link rel="stylesheet" href="${asset('app.css')}">
</head>
<body>
<main>
<h1>Hello World from <span id="backend">${hostname}</span></h1>
<p>Reload the page: the load balancer sends each request to another replica.</p>
<p id="sw-status">Service worker: not registered yet.</p>
</main>
<script src="${asset('app.js')}" defer></script>
</body>
</html>
`);
});

app.get('/api/whoami', (req, res) => res.json({ backend: hostname }));

// The demo flow of requests.http: log in, read the session, save a note and read it back, submit a form
// with its token, change a greeting and read it. Every answer works on any replica. SCALEOUT_DEMO_BUG
// turns on one classic bug of state kept in one process, for `scaleout replay` to find:
//   session  sessions kept in this process's memory       disk    notes written to this container's disk
//   cache    greetings cached in this process's memory    secret  a signing key made by each process
//   csrf     form tokens remembered by this process
// several at once: a comma-separated list (`session,disk`)
const demoBugs = new Set((process.env.SCALEOUT_DEMO_BUG || '').split(',').map((b) => b.trim()).filter(Boolean));
const secretKey = demoBugs.has('secret') ? crypto.randomBytes(32) : (process.env.SECRET_KEY || 'dev-only: set SECRET_KEY');
const sessions = new Map(); const formTokens = new Set(); const greetings = new Map();
const notesDir = '/tmp/notes';
const fs = require('fs');
const path = require('path');

const sign = (value) => `${value}.${crypto.createHmac('sha256', secretKey).update(value).digest('hex').slice(0, 32)}`;
const verified = (token) => { // the signed value, or null when the signature is not ours
  const value = token.slice(0, Math.max(token.lastIndexOf('.'), 0));
  const good = Buffer.from(sign(value)); const got = Buffer.from(token);
  return value && good.length === got.length && crypto.timingSafeEqual(good, got) ? value : null;
};
const cookies = (req) => Object.fromEntries((req.headers.cookie || '').split(';').map((c) => c.trim())
  .filter((c) => c.includes('=')).map((c) => [c.slice(0, c.indexOf('=')), c.slice(c.indexOf('=') + 1)])
  .map(([k, v]) => { try { return [k, decodeURIComponent(v.replace(/^"|"$/g, ''))]; } catch { return [k, '']; } }));
const field = (req, name) => (req.body && typeof req.body[name] === 'string' ? req.body[name] : '');
// what changes on every answer (when, which replica, which request): replay masks it as noise
const answer = (res, status, doc) => res.status(status)
  .json({ ...doc, backend: hostname, at: new Date().toISOString(), request_id: crypto.randomUUID() });

app.use('/api', express.json(), express.text());
app.post('/api/login', (req, res) => {
  const user = field(req, 'user').replace(/[^\w.-]/g, '').slice(0, 40) || 'guest';
  let token;
  if (demoBugs.has('session')) {
    token = crypto.randomBytes(16).toString('hex');
    sessions.set(token, user);
  } else { // the session is in the cookie, signed with the key every replica shares
    token = sign(`${user}:${crypto.randomBytes(8).toString('hex')}`);
  }
  res.cookie('session', token, { path: '/', httpOnly: true, sameSite: 'lax' });
  answer(res, 200, { user });
});
app.get('/api/me', (req, res) => {
  const session = cookies(req).session || '';
  const user = demoBugs.has('session') ? sessions.get(session) : (verified(session) || '').split(':')[0];
  if (user) answer(res, 200, { user }); else answer(res, 401, { error: 'log in first' });
});
app.post('/api/notes', (req, res) => {
  const text = typeof req.body === 'string' ? req.body : '';
  let id;
  if (demoBugs.has('disk')) {
    id = crypto.randomUUID().replace(/-/g, '');
    fs.mkdirSync(notesDir, { recursive: true });
    fs.writeFileSync(path.join(notesDir, id), text);
  } else { // no store at all: the id is the note (a real app: a shared volume or an object store)
    id = Buffer.from(text).toString('base64url');
  }
  res.location(`/api/notes/${id}`);
  answer(res, 201, { id });
});
app.get('/api/notes/:id', (req, res) => {
  const { id } = req.params;
  let text;
  if (demoBugs.has('disk')) {
    try { text = fs.readFileSync(path.join(notesDir, id.replace(/[^0-9a-f]/g, '') || 'none'), 'utf8'); } catch { text = null; }
  } else {
    text = /^[\w-]*$/.test(id) ? Buffer.from(id, 'base64url').toString('utf8') : null;
  }
  if (text === null) answer(res, 404, { error: 'no such note' }); else answer(res, 200, { id, text });
});
app.get('/api/form', (req, res) => {
  let token = crypto.randomBytes(16).toString('hex');
  if (demoBugs.has('csrf')) formTokens.add(token); else token = sign(token);
  answer(res, 200, { token });
});
app.post('/api/form', (req, res) => {
  const token = field(req, 'token');
  const ok = demoBugs.has('csrf') ? formTokens.has(token) : verified(token) !== null;
  if (ok) answer(res, 200, { saved: true }); else answer(res, 403, { error: 'invalid form token' });
});
app.post('/api/greeting', (req, res) => { // the greeting is kept in a cookie: the demo has no database
  const greeting = field(req, 'greeting').replace(/[^\w .,!-]/g, '').slice(0, 80);
  if (demoBugs.has('cache')) greetings.set(cookies(req).session || '', greeting);
  res.cookie('greeting', greeting, { path: '/', sameSite: 'lax' });
  answer(res, 200, { greeting });
});
app.get('/api/greeting', (req, res) => {
  const jar = cookies(req);
  const session = jar.session || '';
  if (demoBugs.has('cache') && greetings.has(session)) return answer(res, 200, { greeting: greetings.get(session) });
  const greeting = jar.greeting || 'Hello';
  if (demoBugs.has('cache')) greetings.set(session, greeting);
  return answer(res, 200, { greeting });
});

app.get('/ws', (req, res) => res.status(426).set({ Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' })
  .type('text/plain').send('this is a WebSocket endpoint (RFC 6455, version 13)\n'));

const server = app.listen(port, () => console.log(`backend ${hostname} listening on :${port}`));

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'; // RFC 6455, section 1.3
const WS_MAX_MESSAGE = 1 << 20;
const [CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG] = [0x0, 0x1, 0x2, 0x8, 0x9, 0xa];
const websockets = new Set(); // their close functions: told "going away" (1001) when the replica stops
const utf8 = new TextDecoder('utf-8', { fatal: true });

server.on('upgrade', (req, socket, head) => {
  const key = req.headers['sec-websocket-key'] || '';
  if (req.url.split('?')[0] !== '/ws' || (req.headers.upgrade || '').toLowerCase() !== 'websocket'
      || req.headers['sec-websocket-version'] !== '13' || Buffer.from(key, 'base64').length !== 16) {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const accept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
    + `Sec-WebSocket-Accept: ${accept}\r\nX-Backend-Id: ${hostname}\r\n\r\n`);
  webSocket(socket, head);
});

// The server side of one WebSocket: reads masked frames, writes unmasked ones.
function webSocket(socket, head) {
  let buffer = head;
  let kind = null; // opcode of the message being put together from fragments
  let fragments = [];
  let size = 0;
  let closing = false;

  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  const send = (opcode, payload = Buffer.alloc(0)) => { // nothing may follow our close frame
    if (closing || !socket.writable) return;
    closing = opcode === CLOSE;
    const n = payload.length;
    const header = Buffer.alloc(n < 126 ? 2 : n < 65536 ? 4 : 10);
    header[0] = 0x80 | opcode;
    if (n < 126) header[1] = n;
    else if (n < 65536) { header[1] = 126; header.writeUInt16BE(n, 2); }
    else { header[1] = 127; header.writeBigUInt64BE(BigInt(n), 2); }
    socket.write(Buffer.concat([header, payload]));
  };
  const close = (code) => { // start the closing handshake; a peer that never answers is cut after 1 s
    const status = Buffer.alloc(2);
    status.writeUInt16BE(code);
    send(CLOSE, status);
    setTimeout(() => socket.destroy(), 1000).unref();
  };
  websockets.add(close);
  socket.on('close', () => websockets.delete(close));

  // One frame from the front of the buffer: null until it is all there; a number is a close status.
  const frame = () => {
    if (buffer.length < 2) return null;
    const fin = buffer[0] & 0x80; const opcode = buffer[0] & 0x0f;
    let length = buffer[1] & 0x7f; let offset = 2;
    if (length === 126) {
      if (buffer.length < 4) return null;
      length = buffer.readUInt16BE(2); offset = 4;
    } else if (length === 127) {
      if (buffer.length < 10) return null;
      length = Number(buffer.readBigUInt64BE(2)); offset = 10;
    }
    if (buffer[0] & 0x70 || !(buffer[1] & 0x80)) return 1002; // no extension was agreed; clients mask
    if (opcode >= CLOSE && (!fin || length > 125)) return 1002;
    if (length > WS_MAX_MESSAGE) return 1009;
    if (buffer.length < offset + 4 + length) return null;
    const mask = buffer.subarray(offset, offset + 4);
    const data = Buffer.from(buffer.subarray(offset + 4, offset + 4 + length));
    for (let i = 0; i < data.length; i++) data[i] ^= mask[i & 3];
    buffer = buffer.subarray(offset + 4 + length);
    return { fin, opcode, data };
  };

  // What to do with one frame; returns a close status when the peer broke the protocol.
  const handle = ({ fin, opcode, data }) => {
    if (opcode === PING) {
      send(PONG, data);
    } else if (opcode === CLOSE) {
      if (data.length === 1) return 1002;
      send(CLOSE, data.subarray(0, 2)); // the answer echoes the peer's status code (unless we began)
      socket.end();
    } else if (opcode !== PONG) {
      if (![CONTINUATION, TEXT, BINARY].includes(opcode) || (opcode === CONTINUATION) !== (kind !== null)) {
        return 1002; // unknown opcode, or a fragment out of order
      }
      kind = kind === null ? opcode : kind;
      fragments.push(data);
      size += data.length;
      if (size > WS_MAX_MESSAGE) return 1009;
      if (fin) {
        const message = Buffer.concat(fragments);
        const type = kind;
        kind = null; fragments = []; size = 0;
        if (type === TEXT) {
          try { utf8.decode(message); } catch { return 1007; }
        }
        send(type, message); // the echo
      }
    }
    return 0;
  };

  const onData = (chunk) => {
    buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
    for (let f = frame(); f !== null; f = frame()) {
      const status = typeof f === 'number' ? f : handle(f);
      if (status) { close(status); socket.removeListener('data', onData); return; }
    }
  };
  socket.on('data', onData);
  send(TEXT, Buffer.from(`hello from ${hostname}`));
  if (head.length) onData(Buffer.alloc(0));
}

// Finish in-flight requests, then exit: Docker sends SIGTERM on `stop`. Open WebSockets are told that
// this replica goes away (1001), so that their clients reconnect, through the balancer, to another one.
const stop = () => {
  websockets.forEach((close) => close(1001));
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
