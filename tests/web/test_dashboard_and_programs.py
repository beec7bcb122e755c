"""Dashboard and programs pages: content, bounded queries, the predict form."""

import json
from dataclasses import replace

import pytest

from bms.errors import ConflictError
from predictions.predict import Answer, Interval
from programs.models import Airing
from programs.selectors import data_version_current
from tests.predictions.factories import prediction_answer
from tests.web.factories import model_version, promoted


def _json_script(html: str, element_id: str):
    start = html.index(f'<script id="{element_id}" type="application/json">') + len(
        f'<script id="{element_id}" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


@pytest.mark.django_db
def test_dashboard_shows_dashes_when_the_apps_have_no_data(viewer_web):
    html = viewer_web.get("/").content.decode()
    assert 'data-testid="kpi-programs">0<' in html
    assert 'data-testid="kpi-data-version">—<' in html
    assert 'data-testid="kpi-cache">—<' in html
    assert 'data-testid="kpi-tokens">—<' in html
    assert 'data-testid="kpi-predictions">—<' in html
    assert "No production model yet" in html
    assert "No training run yet." in html


@pytest.mark.django_db
def test_dashboard_kpis_and_chart_data(viewer_web, broadcasts):
    version = promoted(model_version(target="rating", algorithm="xgboost", r2=0.912))
    html = viewer_web.get("/").content.decode()
    assert 'data-testid="kpi-programs">6<' in html
    assert 'data-testid="kpi-airings">60<' in html
    assert f'data-testid="kpi-data-version">v{data_version_current()}<' in html
    assert 'data-testid="kpi-models">1 / 4<' in html
    assert "mean holdout R² 0.912" in html
    assert f'<td>rating</td><td>xgboost</td><td>v{version.version}</td><td class="num">0.912</td>' in html
    series = _json_script(html, "series-data")
    channel_audience = series["channel"]["audience"]["datasets"]
    assert [d["label"] for d in channel_audience] == ["Channel 0", "Channel 1"]
    assert series["channel"]["audience"]["labels"][:3] == ["2025-01", "2025-02", "2025-03"]
    # Channel 0 airs programs 0, 2 and 4; its January point is the mean audience of its January airings.
    jan = [
        a
        for a in Airing.objects.filter(channel__code="ch0", start__month=1).values_list("audience", flat=True)
        if a is not None
    ]
    assert channel_audience[0]["data"][0] == round(sum(jan) / len(jan), 2)
    assert {d["label"] for d in series["genre"]["revenue"]["datasets"]} == {"Drama", "News", "Comedy", "Sports"}


@pytest.mark.django_db
def test_dashboard_query_count_is_bounded(viewer_web, broadcasts, django_assert_max_num_queries):
    for target in ("rating", "revenue"):
        promoted(model_version(target=target, algorithm="catboost"))
    viewer_web.get("/")  # warm the session/user/role lookups
    with django_assert_max_num_queries(14):
        response = viewer_web.get("/")
    assert response.status_code == 200


@pytest.mark.django_db
def test_program_list_searches_filters_and_paginates(viewer_web, broadcasts):
    html = viewer_web.get("/programs/?q=number+3").content.decode()
    assert "Show number 3" in html
    assert "Show number 2" not in html
    html = viewer_web.get("/programs/?channel=ch1&genre=news").content.decode()
    assert "Show number 1<" in html
    assert "Show number 5<" in html
    assert "Show number 0<" not in html
    assert "2 programs match." in html


@pytest.mark.django_db
def test_program_list_pages_through_many_programs(viewer_web):
    from tests.web.factories import broadcast_data

    broadcast_data(programs=30, weeks=1)
    first = viewer_web.get("/programs/").content.decode()
    second = viewer_web.get("/programs/?page=2").content.decode()
    assert "Page 1 of 2" in first
    assert "Page 2 of 2" in second
    assert second.count('<td class="mono">ABC') == 5


@pytest.mark.django_db
def test_program_list_query_count_is_bounded(viewer_web, broadcasts, django_assert_max_num_queries):
    viewer_web.get("/programs/")
    with django_assert_max_num_queries(8):
        response = viewer_web.get("/programs/?ordering=-avg_audience")
    assert response.status_code == 200


@pytest.mark.django_db
def test_program_list_ignores_an_invalid_filter_instead_of_failing(viewer_web, broadcasts):
    response = viewer_web.get("/programs/?genre=nonsense&page=abc")
    assert response.status_code == 200
    assert "6 programs match." in response.content.decode()


@pytest.mark.django_db
def test_program_page_shows_aggregates_airings_and_trends(viewer_web, broadcasts, django_assert_max_num_queries):
    viewer_web.get("/programs/ABC002/")
    with django_assert_max_num_queries(14):
        response = viewer_web.get("/programs/ABC002/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Show number 2</h1>" in html
    trends = _json_script(html, "trend-data")
    assert set(trends) == {"rating", "revenue", "audience", "engagement"}
    assert trends["audience"]["labels"][:2] == ["2025-01", "2025-02"]
    assert html.count('<td class="nowrap">') == 10  # ten recent airings
    assert "Predictions need the analyst role." in html  # a viewer is not offered the form


@pytest.mark.django_db
def test_unknown_program_is_a_404(viewer_web):
    assert viewer_web.get("/programs/NOPE99/").status_code == 404


@pytest.mark.django_db
def test_predict_form_shows_the_prediction_and_interval(analyst_web, broadcasts, monkeypatch):
    calls = []

    def fake_predict(**kwargs):
        calls.append(kwargs)
        program_id = kwargs["program"].pk
        rating = prediction_answer(program_id=program_id, target="rating", value=2.345, version=3).predictions[0]
        rating = replace(rating, interval=Interval(low=1.5, high=3.25, level=0.9))
        return Answer(target="all", program_id=program_id, predictions=(rating,))

    monkeypatch.setattr("predictions.predict.predict", fake_predict)
    response = analyst_web.post(
        "/programs/ABC001/predict",
        {"target": "all", "start": "2025-06-06T20:00", "channel": "ch1", "is_premiere": "on"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert calls[0]["target"] == "all"
    assert calls[0]["features"] == {
        "start": "2025-06-06T20:00:00-04:00",
        "channel": "ch1",
        "is_premiere": True,
        "is_live": False,
    }
    assert '<td class="num big">2.35</td>' in html
    assert "1.50 \u2013 3.25" in html
    assert "(90%)" in html


@pytest.mark.django_db
def test_predict_form_reports_a_service_error_with_its_status(analyst_web, broadcasts, monkeypatch):
    def no_model(**kwargs):
        raise ConflictError("No production model for rating.")

    monkeypatch.setattr("predictions.predict.predict", no_model)
    response = analyst_web.post(
        "/programs/ABC001/predict", {"target": "rating", "start": "2025-06-06T20:00", "channel": "ch1"}
    )
    assert response.status_code == 409
    assert "No production model for rating." in response.content.decode()


@pytest.mark.django_db
def test_predict_form_rejects_bad_input_with_400(analyst_web, broadcasts):
    response = analyst_web.post("/programs/ABC001/predict", {"target": "height", "start": "yesterday", "channel": "zz"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


@pytest.mark.django_db
def test_a_viewer_cannot_post_a_prediction(viewer_web, broadcasts):
    response = viewer_web.post(
        "/programs/ABC001/predict", {"target": "rating", "start": "2025-06-06T20:00", "channel": "ch1"}
    )
    assert response.status_code == 403


@pytest.mark.django_db
def test_unknown_program_page_is_an_html_404(viewer_web):
    response = viewer_web.get("/programs/NOPE99/")
    assert response["Content-Type"].startswith("text/html")
    assert "No program with id or external id &#x27;NOPE99&#x27;." in response.content.decode()
