// Evaluated once per context (a context serves one function on one worker for many
// invocations). Natives installed from Rust just before: __cf_log, __cf_digest, __cf_encode,
// __cf_decode, __cf_kvs, __cf_origin, __cf_load; they are taken off the global object here.
// Returns the function the engine calls after every invocation to put the global object
// back as it was, so nothing one viewer's invocation leaves there is seen by the next.
(function (g) {
    var natives = {};
    ['__cf_log', '__cf_digest', '__cf_encode', '__cf_decode', '__cf_kvs', '__cf_origin', '__cf_load'].forEach(function (n) {
        natives[n] = g[n];
        delete g[n];
    });
    var cache = {};
    function deepFreeze(o) {
        if ((typeof o === 'object' || typeof o === 'function') && o !== null && !Object.isFrozen(o)) {
            Object.freeze(o);
            Object.getOwnPropertyNames(o).forEach(function (k) {
                var d = Object.getOwnPropertyDescriptor(o, k);
                if (d && 'value' in d) deepFreeze(d.value);
            });
            deepFreeze(Object.getPrototypeOf(o) === Object.prototype || Object.getPrototypeOf(o) === Function.prototype ? null : Object.getPrototypeOf(o));
            if (typeof o === 'function' && o.prototype) deepFreeze(o.prototype);
        }
    }
    function load(name) {
        if (!(name in cache)) {
            var factory = natives.__cf_load(name);
            if (typeof factory !== 'function') {
                throw new Error("Cannot find module '" + name + "'");
            }
            var module = { exports: {} };
            factory(module, natives, require);
            // Modules outlive invocations: nothing may be left on them.
            deepFreeze(module.exports);
            cache[name] = module.exports;
        }
        return cache[name];
    }
    function require(name) {
        return load(String(name));
    }
    function show(v) {
        if (typeof v === 'string') return v;
        try {
            var s = JSON.stringify(v);
            return s === undefined ? String(v) : s;
        } catch (e) {
            return String(v);
        }
    }
    function log() {
        natives.__cf_log(Array.prototype.map.call(arguments, show).join(' '));
    }
    g.require = require;
    var con = { log: log, info: log, warn: log, error: log, debug: log };
    Object.freeze(con);
    g.console = con;
    if (natives.__cf_load('buffer') !== undefined) {
        Object.defineProperty(g, 'Buffer', {
            configurable: false,
            enumerable: false,
            get: function () { return load('buffer').Buffer; },
        });
    }
    // Built-ins outlive invocations too: none can gain a property (which would be seen by
    // the next viewer). Their existing properties stay writable, so code that assigns an
    // inherited name on its own objects keeps working.
    Object.getOwnPropertyNames(g).forEach(function (n) {
        var d = Object.getOwnPropertyDescriptor(g, n);
        var v = d && d.value;
        if ((typeof v === 'function' || typeof v === 'object') && v !== null && v !== g) {
            Object.preventExtensions(v);
            if (typeof v === 'function' && v.prototype) Object.preventExtensions(v.prototype);
        }
    });
    [Object.getPrototypeOf(function* () {}), Object.getPrototypeOf(async function () {}),
     Object.getPrototypeOf([][Symbol.iterator]()), Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())),
     Object.getPrototypeOf(Uint8Array)].forEach(function (p) {
        if (p) {
            Object.preventExtensions(p);
            if (p.prototype) Object.preventExtensions(p.prototype);
        }
    });
    var names = Object.getOwnPropertyNames(g);
    var known = Object.create(null);
    var values = [];
    var descs = [];
    names.forEach(function (n, i) {
        known[n] = true;
        descs[i] = Object.getOwnPropertyDescriptor(g, n);
        values[i] = descs[i].value;
    });
    var count = names.length;
    // Returns false when the global object cannot be put back (a property made
    // non-configurable): the engine then throws the context away.
    return function reset() {
        var changed = false;
        try {
            for (var i = 0; i < count; i++) {
                var d = descs[i];
                if ('value' in d && g[names[i]] !== values[i]) {
                    Object.defineProperty(g, names[i], d);
                    changed = true;
                }
            }
            var now = Object.getOwnPropertyNames(g);
            if (changed || now.length !== count) {
                for (var j = 0; j < now.length; j++) {
                    if (!known[now[j]] && !delete g[now[j]]) return false;
                }
            }
            return true;
        } catch (e) {
            return false;
        }
    };
})(globalThis)
