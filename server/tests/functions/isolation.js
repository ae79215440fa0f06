// Leaves state everywhere it can; the next invocation must see none of it.
var count = 0;
function handler(event) {
    count++;
    var request = event.request;
    request.headers['x-count'] = { value: String(count) };
    request.headers['x-leak'] = { value: typeof leaked === 'undefined' ? 'none' : String(leaked) };
    request.headers['x-global'] = { value: typeof globalThis.marker === 'undefined' ? 'none' : 'seen' };
    request.headers['x-proto'] = { value: typeof Array.prototype.polluted === 'undefined' ? 'none' : 'seen' };
    leaked = request.uri;
    globalThis.marker = true;
    try { Array.prototype.polluted = 1; } catch (e) {}
    JSON = undefined;
    return request;
}
