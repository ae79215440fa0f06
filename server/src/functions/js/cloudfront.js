(function (module, natives) {
    function Store(id) {
        this.id = id;
    }
    Store.prototype.get = function (key, options) {
        var id = this.id;
        return new Promise(function (resolve) {
            var v = natives.__cf_kvs(id, String(key), 'get');
            if (v === undefined) throw new Error('Key ' + key + ' not found');
            var format = (options && options.format) || 'string';
            if (format === 'string') resolve(v);
            else if (format === 'json') resolve(JSON.parse(v));
            else if (format === 'bytes') resolve(natives.__cf_decode(v, 'utf8'));
            else throw new Error('Unknown format: ' + format);
        });
    };
    Store.prototype.exists = function (key) {
        var id = this.id;
        return new Promise(function (resolve) {
            resolve(natives.__cf_kvs(id, String(key), 'exists'));
        });
    };
    Store.prototype.meta = function () {
        var id = this.id;
        return new Promise(function (resolve) {
            resolve(JSON.parse(natives.__cf_kvs(id, '', 'meta')));
        });
    };
    module.exports = {
        kvs: function (id) {
            // Without an id: the store associated with the function.
            return new Store(natives.__cf_kvs(id === undefined ? '' : String(id), '', 'open'));
        },
        updateRequestOrigin: function (params) {
            natives.__cf_origin('update', JSON.stringify(params === undefined ? null : params));
        },
        selectRequestOriginById: function (id) {
            natives.__cf_origin('select', String(id));
        },
    };
})
