"""Login/logout, role-aware navigation, 403 pages, CSRF and escaping."""

import pytest
from django.test import Client

from bms.models import AuditEvent
from programs.models import Program
from tests.web.factories import broadcast_data

PAGES = ["/", "/programs/", "/models/", "/schedule/", "/chat/", "/monitoring/"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"


@pytest.mark.django_db
def test_login_page_renders_a_labelled_form_with_csrf(client):
    response = client.get("/login/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<label for="id_username">Username</label>' in html
    assert '<label for="id_password">Password</label>' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'class="skip-link" href="#main"' in html


@pytest.mark.django_db
def test_logging_in_and_out_with_the_session(analyst):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/")
    token = page.cookies["csrftoken"].value
    response = client.post("/login/", {"username": "analyst", "password": "pw-analyst", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200
    token = client.cookies["csrftoken"].value
    response = client.post("/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_a_wrong_password_is_refused_and_audited(client, analyst):
    response = client.post("/login/", {"username": "analyst", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert AuditEvent.objects.filter(action="login_failed", target="analyst").count() == 1


@pytest.mark.django_db
def test_login_without_a_csrf_token_is_refused(analyst):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "analyst", "password": "pw-analyst"})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def _nav_links(html: str) -> list[str]:
    nav = html.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    return [part.split('"', 1)[0] for part in nav.split('href="')[1:]]


@pytest.mark.django_db
def test_navigation_offers_only_what_the_role_may_open(viewer_web, analyst_web, admin_web):
    assert _nav_links(viewer_web.get("/").content.decode()) == ["/", "/programs/", "/models/"]
    assert _nav_links(analyst_web.get("/").content.decode()) == ["/", "/programs/", "/models/", "/schedule/", "/chat/"]
    assert _nav_links(admin_web.get("/").content.decode()) == [
        "/",
        "/programs/",
        "/models/",
        "/schedule/",
        "/chat/",
        "/monitoring/",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "needed"), [("/schedule/", "analyst"), ("/chat/", "analyst"), ("/monitoring/", "admin")]
)
def test_a_viewer_gets_a_403_page_for_pages_above_its_role(viewer_web, url, needed):
    response = viewer_web.get(url)
    assert response.status_code == 403
    assert f"This page needs the <strong>{needed}</strong> role" in response.content.decode()


@pytest.mark.django_db
def test_a_user_without_a_role_only_sees_the_403_page(client, django_user_model):
    user = django_user_model.objects.create_user(username="nobody", password="x")
    client.force_login(user)
    assert client.get("/").status_code == 403


@pytest.mark.django_db
def test_program_titles_are_escaped_everywhere(analyst_web):
    data = broadcast_data(programs=2, weeks=2)
    Program.objects.filter(pk=data.programs[0].pk).update(title='<script>alert("x")</script>')
    for url in ["/programs/", "/programs/ABC000/"]:
        html = analyst_web.get(url).content.decode()
        assert '<script>alert("x")</script>' not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
