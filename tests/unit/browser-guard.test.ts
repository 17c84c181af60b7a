import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { guardSettings, isLoopbackAuthority, isLoopbackListenHost, judgeBrowserRequest, type GuardedRequest } from "../../src/http/browser-guard.js";

const loopback = guardSettings("127.0.0.1", false);
const anyAddress = guardSettings("0.0.0.0", false);
const loopbackTls = guardSettings("::1", true);

/** The outcome in short: "ok", or the status and code of the refusal. */
function outcome(req: GuardedRequest, settings = loopback): string {
  const refused = judgeBrowserRequest(req, settings);
  return refused === undefined ? "ok" : `${refused.status} ${Code[refused.error.code]}`;
}

const own = "http://127.0.0.1:8080";
const post = (headers: GuardedRequest["headers"]): GuardedRequest => ({ method: "POST", headers: { host: "127.0.0.1:8080", ...headers } });
const get = (headers: GuardedRequest["headers"]): GuardedRequest => ({ method: "GET", headers });

describe("listen addresses", () => {
  it("knows the loopback ones", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "0:0:0:0:0:0:0:1", "localhost", "LOCALHOST", "::ffff:127.0.0.1"]) expect(isLoopbackListenHost(host), host).toBe(true);
    for (const host of ["0.0.0.0", "::", "10.0.0.1", "192.168.1.2", "example.com", "128.0.0.1", "::2"]) expect(isLoopbackListenHost(host), host).toBe(false);
  });
});

describe("Host and :authority", () => {
  it("loopback names and addresses pass, with or without a port", () => {
    const names = ["localhost", "localhost:8080", "LocalHost:1", "localhost.:80", "app.localhost:3000", "127.0.0.1", "127.0.0.1:8080", "127.9.8.7:1", "[::1]", "[::1]:8080", "[0:0::1]:9", "[::ffff:127.0.0.1]:8080"];
    for (const name of names) expect(isLoopbackAuthority(name), name).toBe(true);
  });

  it("other names, addresses and malformed values do not", () => {
    const names = ["evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.1.evil.example", "evil@127.0.0.1", "127.0.0.1@evil", "128.0.0.1", "127.1", "10.0.0.1:8080", "[::2]:8080", "[::1", "::1", "", "localhost:80:80", "local host", "localhost/x"];
    for (const name of names) expect(isLoopbackAuthority(name), name).toBe(false);
  });

  it("on a loopback listen address, a request to another name is refused 421, whatever its method", () => {
    expect(outcome(get({ host: "evil.example:8080" }))).toBe("421 PermissionDenied");
    expect(outcome({ method: "POST", headers: { host: "evil.example", "content-type": "application/json" } })).toBe("421 PermissionDenied");
    expect(outcome(get({ ":authority": "evil.example:8080" }))).toBe("421 PermissionDenied");
    // HTTP/2 may carry both; neither may name another host.
    expect(outcome(get({ ":authority": "127.0.0.1:8080", host: "evil.example" }))).toBe("421 PermissionDenied");
    expect(outcome(get({ ":authority": "localhost:8080" }))).toBe("ok");
    expect(outcome(get({ host: "127.0.0.1:8080" }))).toBe("ok");
  });

  it("a request without any Host (HTTP/1.0) passes", () => {
    expect(outcome(get({}))).toBe("ok");
    expect(outcome({ method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" } })).toBe("ok");
  });

  it("on any other listen address there is no Host check", () => {
    expect(outcome(get({ host: "evil.example:8080" }), anyAddress)).toBe("ok");
    expect(outcome(get({ ":authority": "tally.internal:8080" }), anyAddress)).toBe("ok");
  });

  it("the refusal names the host, quoted and cut short", () => {
    const refused = judgeBrowserRequest(get({ host: `${"a".repeat(10_000)}.example` }), loopback);
    expect(refused?.error.rawMessage).toMatch(/^host "a{64}"… \(10008 characters\) is not a loopback name/);
    expect(refused!.error.rawMessage.length).toBeLessThan(400);
  });
});

describe("cross-site requests that may change something", () => {
  it("Origin of another site, or another port of the same host, is refused 403", () => {
    for (const origin of ["http://evil.example", "http://127.0.0.1:3000", "http://localhost:8080", "https://127.0.0.1:8080", "null", `${own}/`, own.toUpperCase()]) {
      expect(outcome(post({ origin, "content-type": "application/json" })), origin).toBe("403 PermissionDenied");
    }
  });

  it("Sec-Fetch-Site cross-site or same-site is refused 403, with or without Origin", () => {
    expect(outcome(post({ "sec-fetch-site": "cross-site", "content-type": "application/json" }))).toBe("403 PermissionDenied");
    expect(outcome(post({ "sec-fetch-site": "same-site", "content-type": "application/json" }))).toBe("403 PermissionDenied");
    expect(outcome(post({ "sec-fetch-site": "cross-site", origin: own, "content-type": "application/json" }))).toBe("403 PermissionDenied");
  });

  it("every method but GET, HEAD and OPTIONS is checked", () => {
    for (const method of ["POST", "PUT", "PATCH", "DELETE", "get"]) {
      expect(outcome({ method, headers: { host: "127.0.0.1:8080", origin: "http://evil.example" } }), method).toBe("403 PermissionDenied");
    }
    for (const method of ["GET", "HEAD", "OPTIONS"]) {
      expect(outcome({ method, headers: { host: "127.0.0.1:8080", origin: "http://evil.example", "sec-fetch-site": "cross-site" } }), method).toBe("ok");
    }
  });

  it("a second Origin cannot hide behind the first", () => {
    expect(outcome(post({ origin: [own, "http://evil.example"], "content-type": "application/json" }))).toBe("403 PermissionDenied");
  });

  it("Origin with no Host to compare it with is refused", () => {
    expect(outcome({ method: "POST", headers: { origin: own, "content-type": "application/json" } })).toBe("403 PermissionDenied");
  });

  it("the server's own origin passes: the port's scheme, and the Host the request was sent to", () => {
    expect(outcome(post({ origin: own, "sec-fetch-site": "same-origin", "content-type": "application/json" }))).toBe("ok");
    expect(outcome(post({ origin: "http://localhost:8080", host: "localhost:8080", "content-type": "application/json; charset=utf-8" }))).toBe("ok");
    expect(outcome({ method: "POST", headers: { ":authority": "[::1]:8443", origin: "https://[::1]:8443", "content-type": "application/grpc-web+proto" } }, loopbackTls)).toBe("ok");
    // A default port is left out of an origin, and may or may not be in Host.
    expect(outcome({ method: "POST", headers: { host: "localhost:80", origin: "http://localhost", "content-type": "application/json" } })).toBe("ok");
    expect(outcome({ method: "POST", headers: { host: "tally.internal", origin: "http://tally.internal", "content-type": "application/json" } }, anyAddress)).toBe("ok");
  });

  it("Sec-Fetch-Site none (typed by the user) or same-origin passes", () => {
    expect(outcome(post({ "sec-fetch-site": "none", "content-type": "application/json" }))).toBe("ok");
    expect(outcome(post({ "sec-fetch-site": "same-origin", "content-type": "application/json" }))).toBe("ok");
  });
});

describe("content types a browser may send without a preflight", () => {
  const simple = ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "TEXT/PLAIN", ""];

  it("are refused 415 from a browser (Origin or Sec-Fetch-Site), even of the same origin", () => {
    for (const type of simple) {
      expect(outcome(post({ origin: own, "content-type": type })), type).toBe("415 InvalidArgument");
      expect(outcome(post({ "sec-fetch-site": "same-origin", "content-type": type })), type).toBe("415 InvalidArgument");
    }
    expect(outcome(post({ origin: own }))).toBe("415 InvalidArgument");
  });

  it("pass from clients without browser headers: curl -d, scripts, Node's fetch (which sends Sec-Fetch-Mode only)", () => {
    for (const type of simple) expect(outcome(post({ "content-type": type })), type).toBe("ok");
    expect(outcome(post({}))).toBe("ok");
    expect(outcome(post({ "content-type": "text/plain;charset=UTF-8", "sec-fetch-mode": "cors" }))).toBe("ok");
  });

  it("JSON and the RPC content types pass from the same origin", () => {
    for (const type of ["application/json", "application/json; charset=utf-8", "application/cloudevents+json", "application/proto", "application/connect+json", "application/grpc-web+proto", "application/grpc-web-text"]) {
      expect(outcome(post({ origin: own, "sec-fetch-site": "same-origin", "content-type": type })), type).toBe("ok");
    }
  });

  it("the refusal says what to send, quoting what was sent", () => {
    const refused = judgeBrowserRequest(post({ origin: own, "content-type": `text/plain; x=${"\u0000".repeat(5000)}` }), loopback);
    expect(refused?.status).toBe(415);
    expect(refused?.error.rawMessage).toMatch(/^content-type "text\/plain; x=(\\u0000)+"… \(5014 characters\) is refused from a browser.*; send application\/json$/);
    expect(judgeBrowserRequest(post({ origin: own }), loopback)?.error.rawMessage).toMatch(/^content-type \(none\) is refused/);
  });
});
