from django.db import migrations


def create_breakers(apps, schema_editor):
    Route = apps.get_model("breakers", "Route")
    CircuitBreaker = apps.get_model("breakers", "CircuitBreaker")
    for route in Route.objects.filter(breaker__isnull=True):
        CircuitBreaker.objects.create(route=route)


class Migration(migrations.Migration):
    dependencies = [("breakers", "0003_route_when_open_circuitbreaker_breakertransition")]
    operations = [migrations.RunPython(create_breakers, migrations.RunPython.noop)]
