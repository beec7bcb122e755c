"""Registry API: list/filters, production, best, promote, rollback, training runs (202 + status)."""

from __future__ import annotations

import pytest

from registry import services
from registry.models import ModelVersion, PromotionEvent, TrainingRun
from tests.registry.factories import small_data, version_factory

P = ModelVersion.Status


@pytest.mark.django_db
def test_list_filters_and_paginates_with_a_fixed_number_of_queries(viewer_client, django_assert_max_num_queries):
    version_factory(r2=0.8)
    version_factory(algorithm="mlp", r2=0.7)
    revenue = version_factory(target="revenue", r2=0.9, status=P.PRODUCTION)
    with django_assert_max_num_queries(4):
        response = viewer_client.get("/api/v1/models")
    assert response.status_code == 200
    assert response.json()["count"] == 3
    response = viewer_client.get("/api/v1/models", {"target": "revenue", "status": "production"})
    assert [row["id"] for row in response.json()["results"]] == [revenue.pk]
    assert response.json()["results"][0]["metrics"]["r2"] == 0.9


@pytest.mark.django_db
@pytest.mark.parametrize("query", [{"target": "ratings"}, {"algorithm": "svm"}, {"status": "live"}])
def test_list_rejects_unknown_filters(viewer_client, query):
    response = viewer_client.get("/api/v1/models", query)
    assert response.status_code == 400
    assert response.data["error"]["code"] == "validation_error"


@pytest.mark.django_db
def test_production_and_best(viewer_client):
    version = version_factory(r2=0.8, status=P.PRODUCTION)
    response = viewer_client.get("/api/v1/models/production")
    assert response.status_code == 200
    assert response.data["models"]["audience"]["id"] == version.pk
    assert response.data["models"]["revenue"] is None
    best = viewer_client.get("/api/v1/models/audience/best")
    assert best.status_code == 200
    assert (best.data["algorithm"], best.data["version"]) == ("elasticnet", 1)
    assert "feature_importance" in best.data
    assert viewer_client.get("/api/v1/models/revenue/best").status_code == 404
    unknown = viewer_client.get("/api/v1/models/ratings/best")
    assert unknown.status_code == 400
    assert unknown.data["error"]["code"] == "unknown_target"


@pytest.mark.django_db
def test_admin_promotes_and_rolls_back_through_the_api(admin_client_api, admin_user):
    first = version_factory(r2=0.8, status=P.CANDIDATE)
    second = version_factory(algorithm="mlp", r2=0.85)
    assert (
        admin_client_api.post(f"/api/v1/models/{first.pk}/promote", {"reason": "go"}, format="json").status_code == 200
    )
    response = admin_client_api.post(f"/api/v1/models/{second.pk}/promote", {"reason": "better"}, format="json")
    assert response.status_code == 200
    assert response.data["status"] == "production"
    response = admin_client_api.post("/api/v1/models/audience/rollback", {"reason": "oops"}, format="json")
    assert response.status_code == 200
    assert response.data["id"] == first.pk
    assert PromotionEvent.objects.filter(actor=admin_user).count() == 5


@pytest.mark.django_db
def test_promotion_needs_a_reason_and_an_existing_version_and_changes_nothing_otherwise(admin_client_api):
    version = version_factory(r2=0.8)
    response = admin_client_api.post(f"/api/v1/models/{version.pk}/promote", {}, format="json")
    assert response.status_code == 400
    assert response.data["error"]["code"] == "validation_error"
    assert admin_client_api.post("/api/v1/models/999999/promote", {"reason": "x"}, format="json").status_code == 404
    conflict = admin_client_api.post("/api/v1/models/audience/rollback", {"reason": "x"}, format="json")
    assert conflict.status_code == 409
    assert conflict.data["error"]["code"] == "invalid_state"
    assert ModelVersion.objects.get(pk=version.pk).status == P.CANDIDATE
    assert PromotionEvent.objects.count() == 0


@pytest.mark.django_db
def test_viewers_and_analysts_cannot_promote(viewer_client, analyst_client):
    version = version_factory(r2=0.8)
    for client in (viewer_client, analyst_client):
        assert client.post(f"/api/v1/models/{version.pk}/promote", {"reason": "x"}, format="json").status_code == 403
        assert client.post("/api/v1/training-runs", {}, format="json").status_code == 403
    assert ModelVersion.objects.get(pk=version.pk).status == P.CANDIDATE


@pytest.mark.django_db(transaction=True)
def test_starting_a_run_answers_202_with_its_id_and_the_run_can_be_followed(admin_client_api, viewer, eager_tasks):
    from tests.conftest import client_for

    small_data()
    response = admin_client_api.post(
        "/api/v1/training-runs", {"targets": ["engagement"], "algorithms": ["elasticnet"]}, format="json"
    )
    assert response.status_code == 202
    run_id = response.data["id"]
    assert response.data["models_total"] == 1
    status = client_for(viewer).get(f"/api/v1/training-runs/{run_id}")
    assert status.status_code == 200
    assert status.data["status"] == TrainingRun.Status.SUCCEEDED
    assert status.data["progress"] == "1/1"
    assert status.data["dataset"]["engagement"]["rows"] > 0
    baselines = status.data["baselines"]["engagement"]
    assert set(baselines) == {"program_mean", "previous_airing", "mean_last_3", "same_slot_last_week", "best"}
    assert baselines[baselines["best"]]["rmse"] == min(baselines[n]["rmse"] for n in baselines if n != "best")
    assert client_for(viewer).get("/api/v1/training-runs/999999").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [{"targets": ["ratings"]}, {"algorithms": ["svm"]}, {"targets": []}, {"targets": "audience"}, {"seed": 3}],
)
def test_starting_a_run_with_bad_input_is_a_400_and_creates_nothing(admin_client_api, body):
    response = admin_client_api.post("/api/v1/training-runs", body, format="json")
    assert response.status_code == 400
    assert response.data["error"]["code"] == "validation_error"
    assert TrainingRun.objects.count() == 0


def test_services_module_exposes_the_documented_names():
    for name in ("training_run_start", "model_version_promote", "model_version_rollback"):
        assert callable(getattr(services, name))


@pytest.mark.django_db
def test_starting_a_run_with_unknown_fields_names_each_one(admin_client_api):
    response = admin_client_api.post(
        "/api/v1/training-runs", {"targets": ["rating"], "seed": 3, "algo": "mlp"}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == {"algo": ["Unknown field."], "seed": ["Unknown field."]}
    assert TrainingRun.objects.count() == 0


@pytest.mark.django_db
def test_list_pages_have_the_documented_shape(viewer_client):
    for r2 in (0.5, 0.6, 0.7):
        version_factory(r2=r2)
    first = viewer_client.get("/api/v1/models", {"page_size": 2}).json()
    assert set(first) == {"count", "next", "previous", "results"}
    assert (first["count"], len(first["results"]), first["previous"]) == (3, 2, None)
    assert "page=2" in first["next"]
    second = viewer_client.get("/api/v1/models", {"page_size": 2, "page": 2}).json()
    assert (len(second["results"]), second["next"]) == (1, None)
    past_the_end = viewer_client.get("/api/v1/models", {"page_size": 2, "page": 3})
    assert past_the_end.status_code == 404
    assert past_the_end.json()["error"]["code"] == "not_found"
