// Preloaded (node --require) into the Portkey gateway the bench starts: its start-server calls
// @hono/node-server's serve({ fetch, port }), which listens on every interface (server.listen(port,
// undefined)), and it has no flag or variable for the address. A listen on a port with no host
// listens on 127.0.0.1 instead, so the bench exposes nothing beyond loopback.
'use strict';
const net = require('node:net');

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnLoopback(...args) {
  if (typeof args[0] === 'number' && (args[1] === undefined || typeof args[1] === 'function')) {
    if (args.length >= 2 && args[1] === undefined) args[1] = '127.0.0.1';
    else args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
