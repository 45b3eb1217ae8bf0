// The classic Express hello-world, made to show the spread through the load balancer:
// every response names the replica (X-Backend-Id header and body). GET /healthz answers 200.
// Environment: PORT (default 3000), CPU_WORK_MS, SCALEOUT_ASSETS (see scaleout.yaml).
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

const server = app.listen(port, () => console.log(`backend ${hostname} listening on :${port}`));
// Finish in-flight requests, then exit: Docker sends SIGTERM on `stop`.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('SIGINT', () => server.close(() => process.exit(0)));
