import Valkey from 'iovalkey';

/**
 * Adds to `clients` the Valkey clients that the modules loaded next (in an isolated module
 * registry, which has its own iovalkey) open, so that afterAll can close them. Call it inside
 * `jest.isolateModules`. Not a mock: every connection goes through.
 */
export function trackIsolatedValkeyClients(clients: Set<Valkey>): void {
  const loaded = jest.requireActual<{ default?: typeof Valkey }>('iovalkey');
  const IsolatedValkey = (loaded.default ?? loaded) as typeof Valkey;
  if (IsolatedValkey === Valkey) return;
  const connect = IsolatedValkey.prototype.connect;
  jest.spyOn(IsolatedValkey.prototype, 'connect').mockImplementation(function (this: Valkey, ...args: Parameters<Valkey['connect']>) {
    clients.add(this);
    return connect.apply(this, args);
  });
}
