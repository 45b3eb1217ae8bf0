// Registers the service worker where the browser supports it (feature detection).
(function () {
  var status = document.getElementById('sw-status');
  if (!('serviceWorker' in navigator)) {
    if (status) status.textContent = 'Service worker: not supported by this browser.';
    return;
  }
  window.addEventListener('load', function () {
    navigator.serviceWorker.register('/service-worker.js').then(function (reg) {
      if (status) status.textContent = 'Service worker: registered (scope ' + reg.scope + ').';
    }).catch(function (err) {
      if (status) status.textContent = 'Service worker: registration failed: ' + err;
    });
  });
})();
