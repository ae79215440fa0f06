(function (module) {
    function unescape(s) {
        try {
            return decodeURIComponent(s);
        } catch (e) {
            return s.replace(/%([0-9a-fA-F]{2})/g, function (m, h) {
                return String.fromCharCode(parseInt(h, 16));
            });
        }
    }
    function escape(s) {
        return encodeURIComponent(s);
    }
    function parse(str, sep, eq, options) {
        sep = sep || '&';
        eq = eq || '=';
        var max = options && typeof options.maxKeys === 'number' ? options.maxKeys : 1000;
        var decode = options && typeof options.decodeURIComponent === 'function' ? options.decodeURIComponent : unescape;
        var out = {};
        if (typeof str !== 'string' || str.length === 0) return out;
        var parts = str.split(sep);
        if (max > 0 && parts.length > max) parts = parts.slice(0, max);
        for (var i = 0; i < parts.length; i++) {
            var p = parts[i].replace(/\+/g, '%20');
            var at = p.indexOf(eq);
            var k = decode(at >= 0 ? p.slice(0, at) : p);
            var v = at >= 0 ? decode(p.slice(at + eq.length)) : '';
            if (!Object.prototype.hasOwnProperty.call(out, k)) out[k] = v;
            else if (Array.isArray(out[k])) out[k].push(v);
            else out[k] = [out[k], v];
        }
        return out;
    }
    function prim(v) {
        if (typeof v === 'string') return v;
        if ((typeof v === 'number' && isFinite(v)) || typeof v === 'boolean') return String(v);
        return '';
    }
    function stringify(obj, sep, eq, options) {
        sep = sep || '&';
        eq = eq || '=';
        var encode = options && typeof options.encodeURIComponent === 'function' ? options.encodeURIComponent : escape;
        if (obj === null || typeof obj !== 'object') return '';
        return Object.keys(obj).map(function (k) {
            var ks = encode(prim(k)) + eq;
            var v = obj[k];
            if (Array.isArray(v)) {
                return v.map(function (x) { return ks + encode(prim(x)); }).join(sep);
            }
            return ks + encode(prim(v));
        }).filter(Boolean).join(sep);
    }
    module.exports = { parse: parse, decode: parse, stringify: stringify, encode: stringify, escape: escape, unescape: unescape };
})
