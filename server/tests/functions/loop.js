function handler(event) {
    var n = 0;
    for (;;) { n++; }
}
