// tvapp SDK: a small typed event emitter. `on(name, fn)` returns an unsubscribe function; a listener that throws
// does not stop the others (the error goes to the "error" listeners, else to console.error); `once` resolves with the
// next event of a name that passes a predicate.

export class Emitter {
  constructor() {
    this._listeners = new Map();
  }

  /** Call `fn(event)` for every `name` event; return a function that stops it. */
  on(name, fn) {
    if (typeof fn !== "function") throw new TypeError("listener must be a function");
    if (!this._listeners.has(name)) this._listeners.set(name, new Set());
    const entry = { fn };
    this._listeners.get(name).add(entry);
    return () => this._remove(name, entry);
  }

  /** Stop calling `fn` for `name` events. */
  off(name, fn) {
    for (const entry of this._listeners.get(name) || []) if (entry.fn === fn) this._remove(name, entry);
  }

  /** Resolve with the next `name` event for which `predicate` holds; reject after `timeoutMs` if given. */
  once(name, predicate = () => true, timeoutMs = 0) {
    return new Promise((resolve, reject) => {
      let timer = null;
      const stop = this.on(name, (event) => {
        if (!predicate(event)) return;
        stop();
        clearTimeout(timer);
        resolve(event);
      });
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          stop();
          reject(new Error(`no ${name} event within ${timeoutMs} ms`));
        }, timeoutMs);
      }
    });
  }

  /** Call every listener of `name` with `event`; return how many were called. */
  emit(name, event) {
    const entries = Array.from(this._listeners.get(name) || []);
    for (const entry of entries) {
      try {
        entry.fn(event);
      } catch (err) {
        if (name !== "error" && (this._listeners.get("error") || new Set()).size) {
          this.emit("error", { code: "listener_failed", message: String(err && err.message), cause: err });
        } else {
          console.error("tvapp: a listener failed", err);
        }
      }
    }
    return entries.length;
  }

  /** Return how many listeners `name` has. */
  listenerCount(name) {
    return (this._listeners.get(name) || new Set()).size;
  }

  _remove(name, entry) {
    const set = this._listeners.get(name);
    if (set) set.delete(entry);
  }
}
