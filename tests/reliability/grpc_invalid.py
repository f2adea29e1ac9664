"""grpc_invalid: unparsable request bytes sent to every gRPC method (generic unary calls with raw
bytes) must get INVALID_ARGUMENT, be counted in /metrics (encserve_requests_total for that
route with a 4xx code), and leave the server log almost unchanged (< 1 line per 100 bad
messages); a message over max_body_bytes must get RESOURCE_EXHAUSTED. Server: null backend."""
import grpc

import common

NAME = "grpc_invalid"
METHODS = {
    "/inference.InferenceService/Infer": "grpc:inference.Infer",
    "/inference.InferenceService/GetMetrics": "grpc:inference.GetMetrics",
    "/inference.InferenceService/ResetMetrics": "grpc:inference.ResetMetrics",
    "/encserve.v1.Encoder/Embed": "grpc:encserve.v1.Embed",
    "/encserve.v1.Encoder/Score": "grpc:encserve.v1.Score",
    "/encserve.v1.Encoder/Rerank": "grpc:encserve.v1.Rerank",
    "/encserve.v1.Encoder/Tokenize": "grpc:encserve.v1.Tokenize",
    "/encserve.v1.Encoder/Info": "grpc:encserve.v1.Info",
}
# Bytes no protobuf parser accepts: a field with wire type 7 (reserved), a truncated varint,
# a length-delimited field longer than the message, an end-group tag with no start.
BAD = [b"\x0f\x01\x02", b"\x08\xff\xff\xff", b"\x0a\xff\x01abc", b"\x0c", b"\xff\xff\xff\xff\xff"]


def run(ctx):
    res = ctx.res
    per_method = ctx.pick(100, 1000)
    srv = common.start_server(ctx, *common.NULL)
    lines0 = len(srv.log_lines())
    m0 = srv.metrics()
    codes = {}
    with grpc.insecure_channel(srv.grpc_target, options=common.GRPC_OPTIONS) as ch:
        for method in METHODS:
            call = ch.unary_unary(method, request_serializer=None, response_deserializer=None)
            got = {}
            futs = []
            for i in range(per_method):
                futs.append(call.future(BAD[i % len(BAD)], timeout=30))
            for f in futs:
                try:
                    f.result()
                    code = "OK"
                except grpc.RpcError as e:
                    code = e.code().name
                got[code] = got.get(code, 0) + 1
            codes[method] = got
        # oversize: a valid Embed request over max_body_bytes (4 MiB), and raw bytes of that size
        from common import harness
        _, _, v1, v1g = harness.stubs()
        big = v1.EmbedRequest(texts=["x" * 100_000] * 43)  # 4.3 MB
        over = {}
        try:
            v1g.EncoderStub(ch).Embed(big, timeout=60)
            over["valid Embed 4.3 MB"] = "OK"
        except grpc.RpcError as e:
            over["valid Embed 4.3 MB"] = e.code().name
        raw = ch.unary_unary("/encserve.v1.Encoder/Embed", request_serializer=None,
                             response_deserializer=None)
        try:
            raw(b"\x0a\x80\x80\x80\x02" + b"y" * (5 << 20), timeout=60)
            over["raw bytes 5 MiB"] = "OK"
        except grpc.RpcError as e:
            over["raw bytes 5 MiB"] = e.code().name
    m1 = srv.metrics()
    lines = srv.log_lines()[lines0:]
    total_bad = per_method * len(METHODS)
    counted = {}
    for method, route in METHODS.items():
        n = 0
        for code in ("400", "413", "422"):
            n += common.harness.metric_sum(m1, "encserve_requests_total", route=route, code=code) - \
                common.harness.metric_sum(m0, "encserve_requests_total", route=route, code=code)
        counted[method] = int(n)
    res.sent(f"{per_method} unparsable messages ({len(BAD)} kinds) to each of {len(METHODS)} gRPC "
             "methods (generic unary calls, raw bytes); one 4.3 MB Embed and 5 MiB of raw bytes")
    res.figure("codes_by_method", codes)
    res.figure("counted_4xx_by_method", counted)
    res.figure("log_lines_added", len(lines))
    res.figure("log_sample", lines[:5])
    res.figure("oversize", over)
    res.log(f"codes: {codes}")
    res.log(f"log lines added: {len(lines)} for {total_bad} bad messages; oversize: {over}")
    wrong = {m: c for m, c in codes.items() if set(c) != {"INVALID_ARGUMENT"}}
    res.bound("every unparsable message gets INVALID_ARGUMENT",
              wrong if wrong else "all", "INVALID_ARGUMENT", not wrong)
    uncounted = {m: n for m, n in counted.items() if n != per_method}
    res.bound("each counted in /metrics (requests_total, route, 4xx)",
              uncounted if uncounted else f"all {total_bad}", f"{per_method} per route", not uncounted)
    res.bound("server log growth per 100 bad messages", round(100.0 * len(lines) / total_bad, 2),
              "< 1 line", len(lines) * 100 < total_bad)
    bad_over = {k: v for k, v in over.items() if v != "RESOURCE_EXHAUSTED"}
    res.bound("message over max_body_bytes: RESOURCE_EXHAUSTED", bad_over if bad_over else "both",
              "RESOURCE_EXHAUSTED", not bad_over)
    alive = srv.alive() and srv.http("GET", "/health")[0] == 200
    res.bound("server serving afterwards", "yes" if alive else "no", "yes", alive)
    code = srv.close()
    res.bound("server exit code after SIGTERM", code, 0, code == 0)
    res.key(f"{total_bad} bad messages: " + ("all INVALID_ARGUMENT" if not wrong else
            f"codes {sorted({c for v in codes.values() for c in v})}")
            + f", {len(lines)} log lines; oversize {sorted(set(over.values()))}")


if __name__ == "__main__":
    common.main(NAME, run)
