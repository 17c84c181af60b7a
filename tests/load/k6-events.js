// Event generation shared by the k6 scripts: seed-shaped events (4 topics,
// 4 sources, ~150-byte payload) with a share of re-sends of the VU's own
// earlier events, so dedup is exercised the way producers retry.

const topics = ['orders', 'payments', 'users', 'inventory'];
const sources = ['checkout', 'billing', 'auth', 'warehouse'];

/** A run id for setup(): its answer reaches every VU, so event ids are fresh for each run. */
export function newRunId() {
  return `${Date.now().toString(36)}-${Math.floor(Math.random() * 1e9).toString(36)}`;
}

/**
 * Returns next(run): a new event, or with probability dupRate one of the
 * last `keep` events this VU sent. `prefix` keeps the scripts' ids apart.
 */
export function eventSource(prefix, dupRate, keep) {
  const earlier = [];
  let sequence = 0;
  function newEvent(run) {
    const n = sequence++;
    return {
      topic: topics[n % topics.length],
      event_id: `${prefix}-${run}-${__VU}-${n}`,
      timestamp: new Date().toISOString(),
      source: sources[Math.floor(n / topics.length) % sources.length],
      payload: {
        user_id: `user-${String(n % 100000).padStart(6, '0')}`,
        action: 'purchase',
        amount: (n % 100000) / 100,
        currency: 'EUR',
        items: [n % 17, n % 31],
        session: `${__VU}-${n}`,
        client: { ip: '10.0.0.1', app: 'k6' },
      },
    };
  }
  return function next(run) {
    if (earlier.length > 0 && Math.random() < dupRate) {
      return earlier[Math.floor(Math.random() * earlier.length)];
    }
    const event = newEvent(run);
    earlier.push(event);
    if (earlier.length > keep) earlier.shift();
    return event;
  };
}
