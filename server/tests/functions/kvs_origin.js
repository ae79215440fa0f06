import cf from 'cloudfront';
// The origin comes from the key-value store: key "origin:<first path segment>".
const kvs = cf.kvs();
async function handler(event) {
    const request = event.request;
    const segment = request.uri.split('/')[1] || 'default';
    let origin = 'default-origin';
    if (await kvs.exists('origin:' + segment)) {
        origin = await kvs.get('origin:' + segment);
    }
    const routes = await kvs.get('routes', { format: 'json' });
    cf.selectRequestOriginById(origin);
    request.headers['x-route-version'] = { value: String(routes.version) };
    return request;
}
