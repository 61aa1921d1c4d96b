# One image for web, worker and beat; docker-compose.yml picks the role.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CONTROLPLANE_VAR_DIR=/var/lib/controlplane
WORKDIR /app
COPY pyproject.toml README.md ./
COPY controlplane ./controlplane
COPY breakers ./breakers
COPY budgets ./budgets
COPY replay ./replay
RUN pip install --no-cache-dir .
COPY . .
RUN useradd --system --home /app controlplane && mkdir -p /var/lib/controlplane \
    && chown controlplane /var/lib/controlplane
USER controlplane
EXPOSE 8000
CMD ["python", "-m", "controlplane.supervisor", "web"]
