// Token check: ?exp=UNIX&sig=HEX where sig = HMAC-SHA256(secret, uri + ':' + exp).
var crypto = require('crypto');
var SECRET = 'edge-secret';
function denied(why) {
    return { statusCode: 403, statusDescription: 'Forbidden', headers: { 'x-denied': { value: why } } };
}
function handler(event) {
    var request = event.request;
    var qs = request.querystring;
    if (!qs.exp || !qs.sig) return denied('missing');
    if (Number(qs.exp.value) * 1000 < Date.now()) return denied('expired');
    var expected = crypto.createHmac('sha256', SECRET).update(request.uri + ':' + qs.exp.value).digest('hex');
    if (expected !== qs.sig.value) return denied('signature');
    delete qs.sig;
    delete qs.exp;
    return request;
}
