// lb_osc.js -- a small OSC 1.0 encoder/decoder (messages and bundles).
//
// Used where the device code runs on Node (node.script, the tests and the end-to-end test with
// dgram). Inside Max's `js` object OSC is encoded/decoded by udpsend/udpreceive instead, so this
// module is not needed there. ES5 syntax; needs DataView (present in Node and in Max 8+ js).
//
// encode(address, args) -> array of byte values (0..255); wrap with Buffer.from() in Node.
//   args: integers -> 'i' (int32), other numbers -> 'f' (float32), strings -> 's',
//         booleans -> 'T'/'F', null -> 'N', {type: 'd'|'f'|'i'|'s'|'h', value} to force a tag.
// decode(bytes) -> array of {address, args} (a bundle is flattened into its messages).

function utf8Encode(str) {
    var out = [];
    for (var i = 0; i < str.length; i++) {
        var c = str.charCodeAt(i);
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
            var d = str.charCodeAt(i + 1);
            if (d >= 0xdc00 && d <= 0xdfff) {
                c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
                i++;
            }
        }
        if (c < 0x80) {
            out.push(c);
        } else if (c < 0x800) {
            out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
        } else if (c < 0x10000) {
            out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
        } else {
            out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
        }
    }
    return out;
}

function utf8Decode(bytes, start, end) {
    var s = "";
    var i = start;
    while (i < end) {
        var b = bytes[i++];
        var c;
        if (b < 0x80) {
            c = b;
        } else if (b >= 0xf0) {
            c = ((b & 7) << 18) | ((bytes[i] & 63) << 12) | ((bytes[i + 1] & 63) << 6) | (bytes[i + 2] & 63);
            i += 3;
        } else if (b >= 0xe0) {
            c = ((b & 15) << 12) | ((bytes[i] & 63) << 6) | (bytes[i + 1] & 63);
            i += 2;
        } else {
            c = ((b & 31) << 6) | (bytes[i] & 63);
            i += 1;
        }
        if (c >= 0x10000) {
            c -= 0x10000;
            s += String.fromCharCode(0xd800 + (c >> 10), 0xdc00 + (c & 1023));
        } else {
            s += String.fromCharCode(c);
        }
    }
    return s;
}

function pushPadded(out, bytes) {
    var i;
    for (i = 0; i < bytes.length; i++) { out.push(bytes[i]); }
    out.push(0);
    while (out.length % 4 !== 0) { out.push(0); }
}

function pushNumber(out, type, value) {
    var size = (type === "d" || type === "h") ? 8 : 4;
    var dv = new DataView(new ArrayBuffer(size));
    if (type === "i") {
        dv.setInt32(0, value | 0, false);
    } else if (type === "f") {
        dv.setFloat32(0, value, false);
    } else if (type === "d") {
        dv.setFloat64(0, value, false);
    } else if (type === "h") {
        var hi = Math.floor(value / 4294967296);
        dv.setInt32(0, hi, false);
        dv.setUint32(4, value - hi * 4294967296, false);
    }
    for (var i = 0; i < size; i++) { out.push(dv.getUint8(i)); }
}

function tagOf(arg) {
    if (arg === null || arg === undefined) { return "N"; }
    if (arg === true) { return "T"; }
    if (arg === false) { return "F"; }
    if (typeof arg === "number") {
        return (Math.floor(arg) === arg && arg >= -2147483648 && arg <= 2147483647) ? "i" : "f";
    }
    if (typeof arg === "string") { return "s"; }
    if (typeof arg === "object" && typeof arg.type === "string") { return arg.type; }
    throw new Error("cannot encode OSC argument " + String(arg));
}

function encode(address, args) {
    if (typeof address !== "string" || address.charAt(0) !== "/") {
        throw new Error("OSC address must start with '/': " + address);
    }
    args = args || [];
    var out = [];
    pushPadded(out, utf8Encode(address));
    var tags = ",";
    var i;
    for (i = 0; i < args.length; i++) { tags += tagOf(args[i]); }
    pushPadded(out, utf8Encode(tags));
    for (i = 0; i < args.length; i++) {
        var t = tags.charAt(i + 1);
        var v = (args[i] !== null && typeof args[i] === "object") ? args[i].value : args[i];
        if (t === "s") {
            pushPadded(out, utf8Encode(String(v)));
        } else if (t === "i" || t === "f" || t === "d" || t === "h") {
            pushNumber(out, t, v);
        } else if (t !== "T" && t !== "F" && t !== "N") {
            throw new Error("unsupported OSC type tag " + t);
        }
    }
    return out;
}

function readString(bytes, pos, end) {
    var stop = pos;
    while (stop < end && bytes[stop] !== 0) { stop++; }
    if (stop >= end) { throw new Error("unterminated OSC string"); }
    var s = utf8Decode(bytes, pos, stop);
    var next = stop + 1;
    while (next % 4 !== 0) { next++; }
    return { value: s, next: next };
}

function viewOf(bytes, pos, size) {
    var dv = new DataView(new ArrayBuffer(size));
    for (var i = 0; i < size; i++) { dv.setUint8(i, bytes[pos + i]); }
    return dv;
}

function decodeMessage(bytes, start, end, out) {
    var a = readString(bytes, start, end);
    var msg = { address: a.value, args: [] };
    var pos = a.next;
    if (pos >= end) { out.push(msg); return; }
    var t = readString(bytes, pos, end);
    pos = t.next;
    if (t.value.charAt(0) !== ",") { throw new Error("OSC type tags missing"); }
    for (var i = 1; i < t.value.length; i++) {
        var tag = t.value.charAt(i);
        if (tag === "i") {
            msg.args.push(viewOf(bytes, pos, 4).getInt32(0, false)); pos += 4;
        } else if (tag === "f") {
            msg.args.push(viewOf(bytes, pos, 4).getFloat32(0, false)); pos += 4;
        } else if (tag === "d") {
            msg.args.push(viewOf(bytes, pos, 8).getFloat64(0, false)); pos += 8;
        } else if (tag === "h") {
            var dv = viewOf(bytes, pos, 8);
            msg.args.push(dv.getInt32(0, false) * 4294967296 + dv.getUint32(4, false)); pos += 8;
        } else if (tag === "s" || tag === "S") {
            var s = readString(bytes, pos, end);
            msg.args.push(s.value); pos = s.next;
        } else if (tag === "b") {
            var n = viewOf(bytes, pos, 4).getInt32(0, false);
            var blob = [];
            for (var k = 0; k < n; k++) { blob.push(bytes[pos + 4 + k]); }
            msg.args.push(blob);
            pos += 4 + n;
            while (pos % 4 !== 0) { pos++; }
        } else if (tag === "T") {
            msg.args.push(true);
        } else if (tag === "F") {
            msg.args.push(false);
        } else if (tag === "N" || tag === "I") {
            msg.args.push(null);
        } else {
            throw new Error("unsupported OSC type tag " + tag);
        }
        if (pos > end) { throw new Error("truncated OSC message"); }
    }
    out.push(msg);
}

function decodePacket(bytes, start, end, out) {
    var head = readString(bytes, start, end);
    if (head.value === "#bundle") {
        var pos = head.next + 8; // skip the time tag
        while (pos + 4 <= end) {
            var size = viewOf(bytes, pos, 4).getInt32(0, false);
            pos += 4;
            decodePacket(bytes, pos, pos + size, out);
            pos += size;
        }
    } else {
        decodeMessage(bytes, start, end, out);
    }
}

function decode(bytes) {
    var out = [];
    decodePacket(bytes, 0, bytes.length, out);
    return out;
}

exports.encode = encode;
exports.decode = decode;
exports.utf8Encode = utf8Encode;
exports.utf8Decode = utf8Decode;
