// Query-string normalisation: keep only the parameters the origin uses, lower-cased and
// sorted, so equivalent URLs share one cache entry.
var KEEP = ['page', 'size', 'sort'];
function handler(event) {
    var request = event.request;
    var out = {};
    Object.keys(request.querystring).sort().forEach(function (name) {
        var lower = name.toLowerCase();
        if (KEEP.indexOf(lower) >= 0 && !(lower in out)) {
            out[lower] = { value: request.querystring[name].value.toLowerCase() };
        }
    });
    request.querystring = out;
    return request;
}
