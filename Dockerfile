FROM python:3.11-slim
WORKDIR /app
# The dependencies first, pinned and hash-checked from the lock (its own layer: it changes less often than
# the code); the lock also pins setuptools, which builds the project below without build isolation.
COPY requirements.txt ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.txt
COPY pyproject.toml README.md ./
COPY postmortem ./postmortem
COPY workflows ./workflows
COPY activities ./activities
COPY webhooks ./webhooks
COPY integrations ./integrations
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && useradd --create-home postmortem && mkdir /data && chown postmortem /data
USER postmortem
EXPOSE 8000
CMD ["postmortem", "api"]
