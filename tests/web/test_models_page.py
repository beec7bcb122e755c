"""Models page: matrix, history, ledger; promotion/rollback with confirmation; training runs."""

import pytest

from registry.models import ModelVersion, PromotionEvent, TrainingRun
from tests.web.factories import model_version, promoted


@pytest.fixture
def registry_rows(db, admin_user):
    old = promoted(model_version(target="rating", algorithm="xgboost", version=1, r2=0.81), actor=admin_user)
    new = model_version(target="rating", algorithm="xgboost", version=2, r2=0.86)
    other = model_version(target="audience", algorithm="mlp", version=1, r2=0.75)
    return old, new, other


@pytest.fixture
def artifacts_ok(monkeypatch):
    """Promotion loads the artifact first; these rows have none."""
    monkeypatch.setattr("registry.artifacts.load_model", lambda version: object())


@pytest.mark.django_db
def test_matrix_shows_the_production_version_per_cell(viewer_web, registry_rows, django_assert_max_num_queries):
    viewer_web.get("/models/")
    with django_assert_max_num_queries(10):
        response = viewer_web.get("/models/")
    html = response.content.decode()
    matrix = html.split('data-testid="model-matrix"')[1].split("</table>")[0]
    xgb_row = matrix.split('<th scope="row">xgboost</th>')[1].split("</tr>")[0]
    assert "R² 0.810" in xgb_row  # production v1 wins over the newer candidate v2
    assert "badge-production" in xgb_row
    assert "R² 0.750" in matrix.split('<th scope="row">mlp</th>')[1].split("</tr>")[0]
    ledger = html.split('data-testid="ledger"')[1].split("</table>")[0]
    assert "rating · xgboost v1" in ledger
    assert "<td>admin</td>" in ledger


@pytest.mark.django_db
def test_viewer_and_analyst_are_not_offered_admin_actions(viewer_web, analyst_web, registry_rows):
    for client in (viewer_web, analyst_web):
        html = client.get("/models/").content.decode()
        assert "Promote…" not in html
        assert "Roll back" not in html
        assert "Start a training run" not in html


@pytest.mark.django_db
def test_admin_sees_promote_rollback_and_training(admin_web, registry_rows):
    _, new, _ = registry_rows
    html = admin_web.get("/models/").content.decode()
    assert f'href="/models/{new.pk}/promote"' in html
    assert 'href="/models/rollback/rating"' in html
    assert "Start a training run" in html


@pytest.mark.django_db
def test_promotion_needs_a_confirmation_and_a_reason(admin_web, registry_rows, artifacts_ok):
    _, new, _ = registry_rows
    page = admin_web.get(f"/models/{new.pk}/promote")
    assert "Promote xgboost v2 for rating" in page.content.decode()
    response = admin_web.post(f"/models/{new.pk}/promote", {"reason": "better holdout"})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    new.refresh_from_db()
    assert new.status == "candidate"
    assert PromotionEvent.objects.count() == 1


@pytest.mark.django_db
def test_promote_then_roll_back_through_the_pages(admin_web, registry_rows, artifacts_ok):
    old, new, _ = registry_rows
    response = admin_web.post(f"/models/{new.pk}/promote", {"reason": "better holdout", "confirm": "on"})
    assert response.status_code == 302
    assert response["Location"] == "/models/"
    assert ModelVersion.objects.get(pk=new.pk).status == "production"
    assert ModelVersion.objects.get(pk=old.pk).status == "archived"
    assert "Promoted xgboost v2 to production for rating." in admin_web.get("/models/").content.decode()

    response = admin_web.post("/models/rollback/rating", {"reason": "bad live numbers", "confirm": "on"})
    assert response.status_code == 302
    assert ModelVersion.objects.get(pk=old.pk).status == "production"
    assert ModelVersion.objects.get(pk=new.pk).status == "archived"
    reasons = list(PromotionEvent.objects.order_by("id").values_list("reason", flat=True))
    assert reasons[-1].endswith("bad live numbers")


@pytest.mark.django_db
def test_promoting_a_production_version_is_refused_with_409(admin_web, registry_rows, artifacts_ok):
    old, _, _ = registry_rows
    response = admin_web.post(f"/models/{old.pk}/promote", {"reason": "again", "confirm": "on"})
    assert response.status_code == 409
    assert "already in production" in response.content.decode()
    assert PromotionEvent.objects.count() == 1


@pytest.mark.django_db
def test_rollback_without_a_previous_version_is_refused(admin_web, registry_rows, artifacts_ok):
    response = admin_web.post("/models/rollback/audience", {"reason": "why not", "confirm": "on"})
    assert response.status_code == 409
    assert "no production model for audience" in response.content.decode()


@pytest.mark.django_db
def test_unknown_version_or_target_is_a_404(admin_web, db):
    assert admin_web.get("/models/9999/promote").status_code == 404
    assert admin_web.get("/models/rollback/height").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("client_name", ["viewer_web", "analyst_web"])
def test_non_admins_cannot_promote_roll_back_or_train(request, client_name, registry_rows, artifacts_ok):
    client = request.getfixturevalue(client_name)
    _, new, _ = registry_rows
    assert client.get(f"/models/{new.pk}/promote").status_code == 403
    assert client.post(f"/models/{new.pk}/promote", {"reason": "x" * 5, "confirm": "on"}).status_code == 403
    assert client.post("/models/rollback/rating", {"reason": "x" * 5, "confirm": "on"}).status_code == 403
    assert client.post("/models/train", {}).status_code == 403
    assert ModelVersion.objects.get(pk=new.pk).status == "candidate"
    assert PromotionEvent.objects.count() == 1
    assert TrainingRun.objects.count() == 0


@pytest.mark.django_db
def test_starting_a_training_run_redirects_to_its_progress_page(admin_web):
    response = admin_web.post("/models/train", {"targets": ["rating"]})
    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/models/runs/{run.pk}/"
    assert run.targets == ["rating"]
    assert run.models_total == 6
    html = admin_web.get(response["Location"]).content.decode()
    assert f"Training run #{run.pk}" in html
    assert f'data-poll-url="/models/runs/{run.pk}/status"' in html
    state = admin_web.get(f"/models/runs/{run.pk}/status").json()
    assert state == {
        "id": run.pk,
        "status": "queued",
        "finished": False,
        "error": "",
        "done": 0,
        "total": 6,
        "percent": 0,
    }


@pytest.mark.django_db
def test_an_unknown_training_target_is_refused(admin_web):
    response = admin_web.post("/models/train", {"targets": ["height"]}, follow=True)
    assert "Training could not be started: invalid targets." in response.content.decode()
    assert TrainingRun.objects.count() == 0


@pytest.mark.django_db
def test_the_latest_runs_baselines_are_shown_per_target(viewer_web, registry_rows):
    scores = {
        "program_mean": {"r2": 0.41, "rmse": 3.5, "mse": 12.25, "mae": 2.0},
        "previous_airing": {"r2": 0.62, "rmse": 2.25, "mse": 5.0625, "mae": 1.5},
        "best": "previous_airing",
    }
    TrainingRun.objects.create(
        trigger="manual",
        seed=1,
        baselines={"rating": {"program_mean": {"r2": 0.0, "rmse": 9.0}, "best": "program_mean"}},
    )
    TrainingRun.objects.create(trigger="manual", seed=1, baselines={"rating": scores})
    html = viewer_web.get("/models/").content.decode()
    table = html.split('data-testid="baselines"')[1].split("</table>")[0]
    row = table.split('<th scope="row">previous_airing</th>')[1].split("</tr>")[0]
    assert "R² 0.620" in row
    assert "RMSE 2.25 · best" in row
    row = table.split('<th scope="row">program_mean</th>')[1].split("</tr>")[0]
    assert "R² 0.410" in row
    assert "best" not in row
