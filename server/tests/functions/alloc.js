function handler(event) {
    var chunks = [];
    for (var i = 0; i < 1000; i++) {
        chunks.push(new Array(1 << 20).fill(i));
    }
    return event.request;
}
