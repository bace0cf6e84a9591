"""Admin of action plans: who works on which agency's plans (``PlanStaff``), and the tasks
(created and updated on the staff pages under ``/plans/``; read here)."""

from __future__ import annotations

from django.contrib import admin

from plans.models import PlanStaff, Task, TaskNote


@admin.register(PlanStaff)
class PlanStaffAdmin(admin.ModelAdmin):
    list_display = ["user", "unit", "agency"]
    list_filter = ["unit"]
    search_fields = ["user__username", "unit__code", "agency__code"]
    autocomplete_fields = ["user", "unit", "agency"]


class TaskNoteInline(admin.TabularInline):
    model = TaskNote
    extra = 0
    fields = ["created_at", "author", "status_from", "status_to", "text", "evidence_name"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["pk", "round", "unit", "agency", "indicator_code", "status", "deadline"]
    list_filter = ["status", "round"]
    search_fields = ["title", "indicator_code", "unit__code", "agency__code"]
    raw_id_fields = ["round", "unit", "agency", "owner", "created_by"]
    readonly_fields = ["deadline", "created_at", "updated_at", "created_by"]
    inlines = [TaskNoteInline]
