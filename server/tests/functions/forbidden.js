function handler(event) {
    event.request.headers['host'] = { value: 'evil.example' };
    return event.request;
}
