FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY postmortem ./postmortem
COPY workflows ./workflows
COPY activities ./activities
COPY webhooks ./webhooks
COPY integrations ./integrations
RUN pip install --no-cache-dir . && useradd --create-home postmortem && mkdir /data && chown postmortem /data
USER postmortem
EXPOSE 8000
CMD ["postmortem", "api"]
