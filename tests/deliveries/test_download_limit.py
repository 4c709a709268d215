"""The download limit per recipient and file: counted atomically, also under concurrency."""

import threading
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from deliveries.models import Delivery, Download
from tests.deliveries.receive_support import (
    address_url,
    body,
    file_url,
    landing,
    open_and_confirm,
    page,
    zip_url,
)


@pytest.fixture
def limited(make_delivery, client):
    made = make_delivery(download_limit=1, files={"a.txt": b"a" * 5000, "b.txt": b"b" * 10})
    open_and_confirm(client, made)
    return made


def count(made, name):
    counter = Download.objects.filter(file=made.files[name]).first()
    return counter.count if counter else 0


def test_a_file_downloads_as_often_as_allowed_then_is_410(client, limited):
    assert body(client.get(file_url(limited, "a.txt"))) == limited.plaintexts["a.txt"]

    again = client.get(file_url(limited, "a.txt"))

    assert again.status_code == 410
    assert not again.streaming
    assert "as often as the sender allowed (1 time)" in again.text
    assert client.head(file_url(limited, "a.txt")).status_code == 410
    assert count(limited, "a.txt") == 1
    shown = client.get(page(limited))
    assert "download limit reached" in shown.text
    assert client.get(file_url(limited, "b.txt")).status_code == 200  # per file


def test_a_limit_of_two_allows_two(client, make_delivery):
    made = make_delivery(download_limit=2)
    open_and_confirm(client, made)

    statuses = [client.get(file_url(made, "report.pdf")).status_code for _ in range(3)]

    assert statuses == [200, 200, 410]


def test_resuming_with_a_range_does_not_count_again(client, limited):
    # Say the connection broke after 1000 bytes.
    part = body(client.get(file_url(limited, "a.txt")))[:1000]

    rest = client.get(file_url(limited, "a.txt"), HTTP_RANGE="bytes=1000-")

    assert rest.status_code == 206
    assert part + body(rest) == limited.plaintexts["a.txt"]
    assert count(limited, "a.txt") == 1


def test_a_range_after_byte_0_counts_when_nothing_was_counted_before(client, limited):
    response = client.get(file_url(limited, "a.txt"), HTTP_RANGE="bytes=1000-")

    assert response.status_code == 206
    body(response)
    assert count(limited, "a.txt") == 1
    assert client.get(file_url(limited, "a.txt"), HTTP_RANGE="bytes=0-").status_code == 410


def test_a_resume_is_refused_once_the_delivery_expired(client, limited):
    body(client.get(file_url(limited, "a.txt")))
    Delivery.objects.filter(pk=limited.delivery.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = client.get(file_url(limited, "a.txt"), HTTP_RANGE="bytes=1000-")

    assert response.status_code == 410
    assert "expired" in response.text


def test_the_zip_counts_every_file(client, limited):
    assert client.get(zip_url(limited)).status_code == 200

    assert count(limited, "a.txt") == count(limited, "b.txt") == 1
    assert client.get(file_url(limited, "b.txt")).status_code == 410
    assert client.get(zip_url(limited)).status_code == 410


def test_no_zip_once_any_file_is_used_up(client, limited):
    body(client.get(file_url(limited, "a.txt")))

    response = client.get(zip_url(limited))

    assert response.status_code == 410
    assert "one by one" in response.text
    assert count(limited, "b.txt") == 0  # nothing counted for the refused ZIP


def test_twenty_concurrent_downloads_with_limit_1_give_exactly_one(live_server, make_delivery):
    made = make_delivery(download_limit=1, files={"once.bin": b"o" * 300_000})
    browser = requests.Session()
    browser.get(live_server.url + landing(made))
    confirmed = browser.post(
        live_server.url + address_url(made),
        {"email": "rita@example.org", "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        allow_redirects=False,
    )
    assert confirmed.status_code == 302
    url = live_server.url + file_url(made, "once.bin")
    start = threading.Barrier(20)
    results = []

    def download():
        session = requests.Session()
        session.cookies.update(browser.cookies)
        start.wait()
        response = session.get(url, timeout=60)
        results.append((response.status_code, response.content))

    threads = [threading.Thread(target=download) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [410] * 19
    assert [content for status, content in results if status == 200] == [b"o" * 300_000]
    assert all(b"as often as the sender allowed" in c for s, c in results if s == 410)
    assert Download.objects.get(file=made.files["once.bin"]).count == 1
