// Redirect by the viewer's country.
function handler(event) {
    var request = event.request;
    var country = request.headers['cloudfront-viewer-country'];
    if (country && country.value === 'DE' && !request.uri.startsWith('/de/')) {
        return {
            statusCode: 302,
            statusDescription: 'Found',
            headers: { location: { value: 'https://example.org/de' + request.uri } },
        };
    }
    return request;
}
