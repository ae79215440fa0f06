function handler(event) {
    throw new Error('deliberate failure');
}
