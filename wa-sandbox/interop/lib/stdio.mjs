// Imported first by client.mjs: stdout carries only the JSON-lines protocol, so
// every console method (libsignal logs "Closing session" with console.info, for
// example) is sent to stderr before any dependency is loaded.
import { format } from 'node:util';

for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace']) {
  console[method] = (...args) => {
    process.stderr.write(`${format(...args)}\n`);
  };
}
