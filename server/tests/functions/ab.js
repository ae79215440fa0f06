// A/B test by cookie: viewers in group B see /b/...; the cookie is set when missing.
function handler(event) {
    var request = event.request;
    var group = request.cookies.group ? request.cookies.group.value : (event.viewer.ip.split('.').pop() % 2 ? 'b' : 'a');
    if (!request.cookies.group) {
        request.cookies.group = { value: group };
    }
    if (group === 'b') {
        request.uri = '/b' + request.uri;
    }
    return request;
}
