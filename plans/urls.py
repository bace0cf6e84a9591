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
    path("<str:round_code>/<str:unit_code>/plan.xlsx", views.plan_xlsx, name="plan-xlsx"),
    path("<str:round_code>/<str:unit_code>/plan.pdf", views.plan_pdf, name="plan-pdf"),
]
