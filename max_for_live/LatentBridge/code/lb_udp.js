// lb_udp.js -- Node-only UDP transport for lb_client.js: dgram + lb_osc.js.
// Used by the tests and the end-to-end test in place of Max's [udpsend]/[udpreceive]; it also
// runs unchanged inside [node.script] (which has real sockets) should a patch want to move the
// wire there. Not loaded by the [js] object (no sockets in classic Max js).

var dgram = require("dgram");
var osc = require("./lb_osc.js");

// opts: host, port (daemon), listenPort (0 = any free port), onMessage(address, args)
// Calls back ready(err, transport) once bound; transport.replyPort is the bound port.
function openTransport(opts, ready) {
    var sock = dgram.createSocket("udp4");
    var transport = {
        replyPort: 0,
        send: function (address, args) {
            var buf = Buffer.from(osc.encode(address, args));
            sock.send(buf, 0, buf.length, opts.port, opts.host || "127.0.0.1");
        },
        close: function () { try { sock.close(); } catch (e) { /* already closed */ } },
        errors: []
    };
    sock.on("message", function (buf) {
        var msgs;
        try {
            msgs = osc.decode(buf);
        } catch (e) {
            transport.errors.push(e.message);
            return;
        }
        for (var i = 0; i < msgs.length; i++) { opts.onMessage(msgs[i].address, msgs[i].args); }
    });
    sock.on("error", function (e) { transport.errors.push(e.message); });
    sock.bind(opts.listenPort || 0, "127.0.0.1", function () {
        transport.replyPort = sock.address().port;
        ready(null, transport);
    });
}

exports.openTransport = openTransport;
