(function (module, natives, require) {
    // runtime 2.0 digests to a Buffer without an encoding, 1.0 to a byte string.
    var v2 = natives.__cf_load('buffer') !== undefined;
    var ALGS = ['md5', 'sha1', 'sha256'];
    function Digest(alg, key) {
        alg = String(alg).toLowerCase();
        if (ALGS.indexOf(alg) < 0) throw new Error('Digest method not supported: ' + alg);
        this.alg = alg;
        this.key = key;
        this.parts = [];
        this.done = false;
    }
    Digest.prototype.update = function (data, e) {
        if (this.done) throw new Error('Digest already called');
        if (typeof data === 'string' && e && e.toLowerCase() !== 'utf8' && e.toLowerCase() !== 'utf-8') {
            data = natives.__cf_decode(data, e.toLowerCase());
        }
        this.parts.push(data);
        return this;
    };
    Digest.prototype.digest = function (e) {
        if (this.done) throw new Error('Digest already called');
        this.done = true;
        var raw = natives.__cf_digest(this.alg, this.key, this.parts);
        if (e) return natives.__cf_encode(raw, e.toLowerCase());
        if (v2) return require('buffer').Buffer.from(raw);
        return natives.__cf_encode(raw, 'latin1');
    };
    module.exports = {
        createHash: function (alg) { return new Digest(alg, null); },
        createHmac: function (alg, key) {
            if (key === undefined || key === null) throw new TypeError('createHmac: key is required');
            return new Digest(alg, key);
        },
    };
})
