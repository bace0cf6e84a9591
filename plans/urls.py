"""Staff pages of action plans (``/plans/``)."""

from django.urls import path

from plans import views

app_name = "plans"
urlpatterns = [
    path("", views.plan_index, name="index"),
    path("tasks/new/", views.task_new, name="task-new"),
    path("tasks/<int:task_id>/", views.task_detail, name="task"),
    path("notes/<int:note_id>/evidence/", views.evidence, name="evidence"),
    path("<str:round_code>/<str:unit_code>/", views.plan_page, name="plan"),
    *(
        path(
            f"<str:round_code>/<str:unit_code>/plan.{kind}",
            views.plan_file,
            {"kind": kind},
            name=f"plan-{kind}",
        )
        for kind in views.PLAN_FILES
    ),
]
