(function (module, natives) {
    var ENCODINGS = ['utf8', 'utf-8', 'hex', 'base64', 'base64url', 'latin1', 'binary', 'ascii'];
    function enc(e) {
        e = (e || 'utf8').toLowerCase();
        if (ENCODINGS.indexOf(e) < 0) throw new TypeError('Unknown encoding: ' + e);
        return e;
    }
    class Buffer extends Uint8Array {
        static from(v, e) {
            if (typeof v === 'string') {
                var bytes = natives.__cf_decode(v, enc(e));
                var b = new Buffer(bytes.length);
                b.set(bytes);
                return b;
            }
            if (v instanceof ArrayBuffer) return new Buffer(v, e, arguments[2]);
            if (v && typeof v.length === 'number') {
                var out = new Buffer(v.length);
                for (var i = 0; i < v.length; i++) out[i] = v[i] & 255;
                return out;
            }
            throw new TypeError('Buffer.from: unsupported argument');
        }
        static alloc(n, fill, e) {
            var b = new Buffer(n);
            if (fill !== undefined) b.fill(fill, 0, n, e);
            return b;
        }
        static allocUnsafe(n) { return new Buffer(n); }
        static isBuffer(v) { return v instanceof Buffer; }
        static isEncoding(e) { return typeof e === 'string' && ENCODINGS.indexOf(e.toLowerCase()) >= 0; }
        static byteLength(v, e) {
            return typeof v === 'string' ? natives.__cf_decode(v, enc(e)).length : v.byteLength;
        }
        static concat(list, total) {
            if (total === undefined) total = list.reduce(function (n, b) { return n + b.length; }, 0);
            var out = new Buffer(total), at = 0;
            for (var i = 0; i < list.length && at < total; i++) {
                var b = list[i].length > total - at ? list[i].subarray(0, total - at) : list[i];
                out.set(b, at);
                at += b.length;
            }
            return out;
        }
        static compare(a, b) { return a.compare(b); }
        fill(v, start, end, e) {
            if (typeof v === 'string') {
                var bytes = Buffer.from(v, e);
                start = start || 0;
                end = end === undefined ? this.length : end;
                for (var i = start, j = 0; i < end && bytes.length; i++, j = (j + 1) % bytes.length) this[i] = bytes[j];
                return this;
            }
            return Uint8Array.prototype.fill.call(this, v, start, end);
        }
        toString(e, start, end) {
            var view = this.subarray(start || 0, end === undefined ? this.length : end);
            return natives.__cf_encode(view, enc(e));
        }
        toJSON() { return { type: 'Buffer', data: Array.prototype.slice.call(this) }; }
        equals(o) { return this.compare(o) === 0; }
        compare(o) {
            var n = Math.min(this.length, o.length);
            for (var i = 0; i < n; i++) if (this[i] !== o[i]) return this[i] < o[i] ? -1 : 1;
            return this.length === o.length ? 0 : (this.length < o.length ? -1 : 1);
        }
        slice(s, e) { return this.subarray(s, e); }
        subarray(s, e) {
            var v = Uint8Array.prototype.subarray.call(this, s, e);
            return new Buffer(v.buffer, v.byteOffset, v.length);
        }
        write(str, offset, length, e) {
            var bytes = Buffer.from(str, e);
            offset = offset || 0;
            var n = Math.min(bytes.length, this.length - offset, length === undefined ? Infinity : length);
            this.set(bytes.subarray(0, n), offset);
            return n;
        }
        readUInt8(o) { return this[o || 0]; }
        readUInt16BE(o) { o = o || 0; return (this[o] << 8) | this[o + 1]; }
        readUInt32BE(o) { o = o || 0; return ((this[o] << 24) >>> 0) + ((this[o + 1] << 16) | (this[o + 2] << 8) | this[o + 3]); }
        readInt8(o) { var v = this[o || 0]; return v > 127 ? v - 256 : v; }
        writeUInt8(v, o) { this[o || 0] = v; return (o || 0) + 1; }
        indexOf(v, from) {
            if (typeof v === 'number') return Uint8Array.prototype.indexOf.call(this, v, from);
            var needle = typeof v === 'string' ? Buffer.from(v) : v;
            outer: for (var i = from || 0; i + needle.length <= this.length; i++) {
                for (var j = 0; j < needle.length; j++) if (this[i + j] !== needle[j]) continue outer;
                return i;
            }
            return -1;
        }
        includes(v, from) { return this.indexOf(v, from) >= 0; }
    }
    module.exports = { Buffer: Buffer };
})
