"""Where notifications may go (public addresses, or what TAGLEDGER_NOTIFY_ALLOW names), checked on
subscribing, before each POST and on the connected socket; and a POST that follows no redirect,
reads a few KiB of any answer, and ends by its deadline however the receiver drips."""

import ipaddress
import socket
import threading

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from catalog.oci import transport
from history import outbound
from history.outbound import UnsafeURL, check_url
from tests.support.sink import Sink

# Literal addresses, so no DNS is asked: (URL, the kind check_url's refusal names).
REFUSED = [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.8.9.10:8080/hook", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped
    ("http://[::ffff:7f00:1]/", "loopback"),  # the same, written in hex
    ("http://[::127.0.0.1]/", "loopback"),  # IPv4-compatible (deprecated)
    ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 of 127.0.0.1
    ("http://[64:ff9b::7f00:1]/", "loopback"),  # NAT64 of 127.0.0.1
    ("http://169.254.169.254/latest/meta-data/", "link-local"),  # cloud credentials
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64 of 169.254.169.254
    ("http://[2002:a9fe:a9fe::]/", "link-local"),  # 6to4 of 169.254.169.254
    ("http://[fe80::1]/", "link-local"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://100.64.0.1/", "private"),  # carrier-grade NAT, tailnets
    ("http://[fd00::1]/", "private"),
    ("http://0.0.0.0/", "reserved"),
    ("http://[::]/", "reserved"),
    ("http://224.0.0.1/", "reserved"),
    ("http://240.0.0.1/", "reserved"),
]
# Forms the C resolver reads as 127.0.0.1 (inet_aton): refused by what they resolve to.
LOOPBACK_SPELLINGS = ["http://2130706433/", "http://0x7f.1/", "http://127.1/", "http://0177.0.0.1/"]
PUBLIC = [
    "http://93.184.216.34/",
    "https://93.184.216.34:8443/hooks/abc?x=1",
    "http://[2606:4700:4700::1111]/",
]


@pytest.fixture
def nothing_allowed(settings):
    settings.TAGLEDGER_NOTIFY_ALLOW = []
    return settings


@pytest.mark.parametrize(("url", "kind"), REFUSED)
def test_non_public_addresses_are_refused_naming_their_kind(nothing_allowed, url, kind):
    with pytest.raises(UnsafeURL, match=f"a {kind} address; notifications go to public addresses only"):
        check_url(url)


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS)
def test_other_spellings_of_loopback_are_refused(nothing_allowed, url):
    with pytest.raises(UnsafeURL, match=r"resolves to 127\.0\.0\.1, a loopback address"):
        check_url(url)


@pytest.mark.parametrize("url", ["http://localhost/", "http://LocalHost/", "http://localhost:8000/x"])
def test_names_that_resolve_to_loopback_are_refused(nothing_allowed, url):
    with pytest.raises(UnsafeURL, match=r"resolves to (127\.0\.0\.1|::1), a loopback address"):
        check_url(url)


@pytest.mark.parametrize("url", PUBLIC)
def test_public_addresses_are_accepted(nothing_allowed, url):
    check_url(url)


def test_a_name_resolving_to_public_and_private_addresses_is_refused(nothing_allowed, monkeypatch):
    answers = [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.1.2.3")]
    monkeypatch.setattr(transport, "resolve", lambda host: answers)
    with pytest.raises(UnsafeURL, match=r"hooks\.example resolves to 10\.1\.2\.3, a private address"):
        check_url("https://hooks.example/x")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://93.184.216.34/", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("gopher://93.184.216.34/", "only http and https"),
        ("//93.184.216.34/", "only http and https"),
        ("93.184.216.34/hook", "only http and https"),
        ("http://user:pass@93.184.216.34/", "user name or password"),
        ("http://token@93.184.216.34/", "user name or password"),
        ("http://93.184.216.34@127.0.0.1/", "user name or password"),
        ("http:///path", "no host"),
        ("http://93.184.216.34:99999/", "not a URL"),
        ("http://93.184.216.34:0/", "port 0"),
        ("http://[::1/", "not a URL"),
        ("http://93.184.216.34/a b", "spaces, control characters or backslashes"),
        ("http://93.184.216.34/\x00", "spaces, control characters or backslashes"),
        ("http://93.184.216.34\\@127.0.0.1/", "spaces, control characters or backslashes"),
        ("http://93.184.216.34/" + "a" * 3000, "longer than 2048"),
        ("", "a URL is required"),
        (None, "a URL is required"),
        (["http://93.184.216.34/"], "a URL is required"),
        ("http://" + "a" * 300 + ".example/", "not a host name"),  # an IDNA label over 63
    ],
)
def test_urls_that_are_not_plain_http_to_a_host_are_refused_saying_why(nothing_allowed, url, says):
    with pytest.raises(UnsafeURL, match=says):
        check_url(url)


def test_a_host_that_does_not_resolve_is_refused(nothing_allowed):
    with pytest.raises(UnsafeURL, match="does not resolve"):
        check_url("https://no-such-host.invalid/hook")


@pytest.mark.parametrize(
    ("allow", "url"),
    [
        (["localhost"], "http://localhost:8065/hooks/x"),  # by name, whatever it resolves to
        (["LocalHost."], "http://localhost/"),
        (["127.0.0.0/8"], "http://127.0.0.1/"),
        (["127.0.0.1"], "http://127.0.0.1:9/"),
        (["::1/128"], "http://[::1]/"),
        (["10.0.0.0/8", "chat.internal"], "http://10.20.30.40/"),
        (["169.254.0.0/16"], "http://169.254.169.254/"),  # what the operator lists, however unwise
    ],
)
def test_the_allow_list_admits_hosts_by_name_and_addresses_by_network(settings, allow, url):
    settings.TAGLEDGER_NOTIFY_ALLOW = allow
    check_url(url)


@pytest.mark.parametrize(
    ("allow", "url"),
    [
        (["10.0.0.0/8"], "http://127.0.0.1/"),
        (["chat.internal"], "http://127.0.0.1/"),
        (["127.0.0.2"], "http://127.0.0.1/"),
        (["::1/128"], "http://127.0.0.1/"),  # no IPv4 address is in an IPv6 network
        (["localhost"], "http://127.0.0.1/"),  # a name admits that name only
        (["example.com"], "http://localhost/"),
    ],
)
def test_the_allow_list_admits_nothing_else(settings, allow, url):
    settings.TAGLEDGER_NOTIFY_ALLOW = allow
    with pytest.raises(UnsafeURL):
        check_url(url)


@hypothesis_settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(url=st.one_of(st.text(max_size=300), st.from_regex(r"\Ahttps?://[^/]{0,40}(/.{0,40})?\Z")))
def test_any_text_is_accepted_or_refused_with_unsafe_url_never_another_error(
    nothing_allowed, monkeypatch, url
):
    def offline(host, *args, **kwargs):  # no DNS in tests: names do not resolve, literals do
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    try:
        check_url(url)
    except UnsafeURL as refused:
        assert str(refused).isprintable() and len(str(refused)) < 400


# --- the POST ------------------------------------------------------------------------------------------


@pytest.fixture
def sink(settings):
    settings.TAGLEDGER_NOTIFY_ALLOW = ["127.0.0.1"]
    with Sink() as running:
        yield running


def test_a_post_sends_the_body_and_headers_and_returns_the_answer(sink):
    sink.respond(202, headers={"X-Receiver": "ok"}, body=b"accepted")
    response = outbound.post(sink.url, b'{"a":1}', {"Content-Type": "application/json"}, timeout=5)
    assert (response.status, response.headers["X-Receiver"], response.text) == (202, "ok", "accepted")
    assert response.ok and response.latency >= 0
    (request,) = sink.requests
    assert request.body == b'{"a":1}' and request.header("Content-Type") == "application/json"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_not_followed_even_to_the_same_host(sink, status):
    sink.respond(status, headers={"Location": "/elsewhere"})
    response = outbound.post(sink.url, b"{}", {}, timeout=5)
    assert response.status == status and not response.ok
    assert [r.path for r in sink.requests] == ["/hook"]


def test_a_redirect_to_another_host_is_not_followed(sink):
    with Sink() as other:
        sink.respond(302, headers={"Location": other.url})
        assert outbound.post(sink.url, b"{}", {}, timeout=5).headers["Location"] == other.url
        assert other.requests == []


@pytest.mark.parametrize("size", [4097, 10 * 1024 * 1024])
def test_at_most_4_kib_of_an_answer_is_read(sink, size):
    sink.respond(500, body=b"x" * size)
    response = outbound.post(sink.url, b"{}", {}, timeout=10)
    assert response.status == 500 and response.text == "x" * outbound.READ_CAP


def test_an_answer_that_is_not_utf8_is_read_leniently(sink):
    sink.respond(400, body=b"\xff\xfe bad \xc3")
    assert outbound.post(sink.url, b"{}", {}, timeout=5).text == "\ufffd\ufffd bad \ufffd"


def test_a_receiver_dripping_its_answer_is_cut_off_at_the_deadline(sink):
    sink.respond(200, body=b"x" * 1000, drip=0.2)  # 200 s in all, each byte well within a read timeout
    with pytest.raises(outbound.SendFailed, match="no complete answer within 1 s"):
        outbound.post(sink.url, b"{}", {}, timeout=1)


def test_a_receiver_that_does_not_answer_is_cut_off_at_the_deadline(sink):
    sink.respond(200, delay=30)
    with pytest.raises(outbound.SendFailed, match=r"no complete answer within 1 s|timed out"):
        outbound.post(sink.url, b"{}", {}, timeout=1)


@pytest.mark.parametrize(
    "headers",
    [{"X-Big": "a" * 70_000}, {f"X-H{number}": "x" for number in range(150)}],
    ids=["a 70 KB header", "150 headers"],
)
def test_an_answer_with_unreadable_headers_is_a_send_failure(sink, headers):
    sink.respond(200, headers=headers)
    with pytest.raises(outbound.SendFailed):
        outbound.post(sink.url, b"{}", {}, timeout=5)


@pytest.mark.parametrize("answer", [b"garbage\r\n\r\n", b"HTTP/1.1 999999 Nope\r\n\r\n", b"\x00" * 100, b""])
def test_an_answer_that_is_not_http_is_a_send_failure(settings, answer):
    settings.TAGLEDGER_NOTIFY_ALLOW = ["127.0.0.1"]
    server = socket.create_server(("127.0.0.1", 0))

    def answer_once():
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(answer)

    thread = threading.Thread(target=answer_once, daemon=True)
    thread.start()
    try:
        with pytest.raises(outbound.SendFailed):
            outbound.post(f"http://127.0.0.1:{server.getsockname()[1]}/hook", b"{}", {}, timeout=5)
    finally:
        thread.join(5)
        server.close()


def test_a_refused_connection_is_a_send_failure_with_a_reason(settings):
    settings.TAGLEDGER_NOTIFY_ALLOW = ["127.0.0.1"]
    with Sink() as gone:
        url = gone.url
    with pytest.raises(outbound.SendFailed, match=r"ConnectionError: .*Connection refused"):
        outbound.post(url, b"{}", {}, timeout=5)


def test_a_send_failure_does_not_repeat_the_url_path_which_may_be_a_webhook_secret(settings):
    settings.TAGLEDGER_NOTIFY_ALLOW = ["127.0.0.1"]
    with Sink() as gone:
        url = f"http://127.0.0.1:{gone.port}/h/secret?token=1"
    with pytest.raises(outbound.SendFailed) as failure:
        outbound.post(url, b"{}", {}, timeout=5)
    assert "secret" not in str(failure.value) and "token" not in str(failure.value)
    assert "Connection refused" in str(failure.value)


def test_the_url_is_checked_again_before_each_post(sink, settings):
    settings.TAGLEDGER_NOTIFY_ALLOW = []
    with pytest.raises(UnsafeURL, match=r"127\.0\.0\.1 is a loopback address"):
        outbound.post(sink.url, b"{}", {}, timeout=5)
    assert sink.requests == []


def test_a_name_that_rebinds_to_loopback_after_the_check_is_refused_at_connect_time(
    sink, settings, monkeypatch
):
    # The check resolves the name to a public address; the connection then reaches 127.0.0.1, as
    # when a DNS answer with a zero TTL changes between the two lookups.
    settings.TAGLEDGER_NOTIFY_ALLOW = []
    monkeypatch.setattr(transport, "resolve", lambda host: [ipaddress.ip_address("93.184.216.34")])
    with pytest.raises(UnsafeURL, match=r"connected to 127\.0\.0\.1, a loopback address"):
        outbound.post(sink.url, b"{}", {}, timeout=5)
    assert sink.requests == []


def test_an_allowed_network_admits_the_connected_peer_too(sink, settings, monkeypatch):
    settings.TAGLEDGER_NOTIFY_ALLOW = ["127.0.0.0/8"]
    monkeypatch.setattr(transport, "resolve", lambda host: [ipaddress.ip_address("93.184.216.34")])
    assert outbound.post(sink.url, b"{}", {}, timeout=5).status == 200


@pytest.mark.parametrize(
    "entry", ["bad host", "10.0.0.0/33", "a..b", "http://chat.internal", "chat:8065", "é.example"]
)
def test_an_allow_list_entry_that_is_no_host_or_network_stops_start_up(tmp_path, entry):
    from tests.tagledger.test_env import run_check

    result = run_check(tmp_path, TAGLEDGER_NOTIFY_ALLOW=f"chat.internal,{entry}")
    assert result.returncode != 0 and "is neither a host name nor an address or network" in result.stderr


def test_an_allow_list_of_names_addresses_and_networks_starts(tmp_path):
    from tests.tagledger.test_env import run_check

    result = run_check(
        tmp_path, TAGLEDGER_NOTIFY_ALLOW="chat.internal, mattermost ,10.20.0.0/16,192.168.1.7,fd00::/8"
    )
    assert result.returncode == 0, result.stderr
