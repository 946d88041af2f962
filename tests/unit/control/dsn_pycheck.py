#!/usr/bin/python3
"""dsn_pycheck - an independent parser's view of dsn_build output.

Runs "dsn_test --dump DIR" and parses each notice with Python's email
package (policy.default): multipart/report with report-type
delivery-status, exactly three parts, no parser defects, the
delivery-status blocks with the expected actions, no injected fields, and
the returned original (headers only or the full message).
"""
import email
import email.policy
import subprocess
import sys
import tempfile


def check(path, full):
    raw = open(path, 'rb').read()
    assert b'\n' not in raw.replace(b'\r\n', b''), 'bare LF'
    assert b'\r' not in raw.replace(b'\r\n', b''), 'bare CR'
    assert max(len(l) for l in raw.split(b'\r\n')) <= 998, 'long line'
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == 'multipart/report', msg.get_content_type()
    assert msg.get_param('report-type') == 'delivery-status'
    assert msg['Auto-Submitted'] == 'auto-replied'
    assert msg['To'].addresses[0].addr_spec == 'alice@example.org'
    parts = msg.get_payload()
    assert len(parts) == 3, len(parts)
    for part in msg.walk():
        assert not part.defects, (path, part.get_content_type(), part.defects)
    assert parts[0].get_content_type() == 'text/plain'
    assert parts[1].get_content_type() == 'message/delivery-status'
    blocks = parts[1].get_payload()
    assert blocks[0]['Reporting-MTA'] == 'dns; mx1.sluice.example'
    assert blocks[0]['Original-Envelope-Id'] == 'QQ314159 X-Evil: 1'
    assert [b['Action'] for b in blocks[1:]] == ['relayed', 'delayed', 'failed']
    assert blocks[2]['Original-Recipient'] == 'rfc822;Later@example.net'
    assert blocks[3]['Diagnostic-Code'] == 'smtp; 550 5.1.1 no X-Injected: yes'
    for m in [msg] + blocks:
        assert m['X-Injected'] is None and m['X-Evil'] is None
    if full:
        assert parts[2].get_content_type() == 'message/rfc822'
        inner = parts[2].get_payload(0)
        assert inner['Subject'] == 'hello'
        assert 'Hi Bob,' in inner.get_content()
    else:
        assert parts[2].get_content_type() == 'text/rfc822-headers'
        text = parts[2].get_payload()
        assert 'Subject: hello' in text and 'Hi Bob' not in text


def main():
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.argv[1], '--dump', d], check=True)
        check(d + '/mixed_headers.eml', False)
        check(d + '/mixed_full.eml', True)
    print('dsn_pycheck: ok')


if __name__ == '__main__':
    main()
