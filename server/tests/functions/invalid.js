function handler(event) {
    return 'not a request';
}
