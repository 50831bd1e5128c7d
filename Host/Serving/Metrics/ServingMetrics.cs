using Prometheus;

namespace PeftHost.Serving.Metrics;

/// <summary>
/// The server's Prometheus metrics (prometheus-net), in a registry of its own so that several servers in one
/// process keep their counts apart: requests by endpoint and status, prompt and generated tokens, the queue
/// and the running batch, rows per decoding step, and latency histograms (time to first token, whole request,
/// time in the queue). <see cref="WriteAsync"/> writes Prometheus' text format.
/// </summary>
public sealed class ServingMetrics
{
    private static readonly double[] LatencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
    private readonly CollectorRegistry _registry = Prometheus.Metrics.NewCustomRegistry();
    private readonly Counter _requests;
    private readonly Counter _promptTokens;
    private readonly Counter _generatedTokens;
    private readonly Gauge _waiting;
    private readonly Gauge _running;
    private readonly Histogram _batchSize;
    private readonly Histogram _timeToFirstToken;
    private readonly Histogram _requestLatency;
    private readonly Histogram _queueTime;
    private readonly Counter _adapterOperations;

    /// <summary>Creates the collectors.</summary>
    public ServingMetrics()
    {
        MetricFactory f = Prometheus.Metrics.WithCustomRegistry(_registry);
        _requests = f.CreateCounter("pefthost_requests_total", "HTTP requests answered, by endpoint and status code.", new CounterConfiguration { LabelNames = ["endpoint", "status"] });
        _promptTokens = f.CreateCounter("pefthost_prompt_tokens_total", "Prompt tokens of finished generation requests.");
        _generatedTokens = f.CreateCounter("pefthost_generation_tokens_total", "Tokens generated.");
        _waiting = f.CreateGauge("pefthost_queue_depth", "Requests waiting for a row.");
        _running = f.CreateGauge("pefthost_requests_running", "Requests being generated.");
        _batchSize = f.CreateHistogram("pefthost_batch_size", "Sequences decoded together per step.", new HistogramConfiguration { Buckets = [1, 2, 4, 8, 16, 32, 64, 128] });
        _timeToFirstToken = f.CreateHistogram("pefthost_time_to_first_token_seconds", "Seconds from a request's arrival to its first token.", new HistogramConfiguration { Buckets = LatencyBuckets });
        _requestLatency = f.CreateHistogram("pefthost_request_latency_seconds", "Seconds from a request's arrival to its last token.", new HistogramConfiguration { Buckets = LatencyBuckets });
        _queueTime = f.CreateHistogram("pefthost_queue_time_seconds", "Seconds a request waited for a row.", new HistogramConfiguration { Buckets = LatencyBuckets });
        _adapterOperations = f.CreateCounter("pefthost_adapter_operations_total", "Adapter loads, hotswaps and unloads, by operation and result.", new CounterConfiguration { LabelNames = ["operation", "result"] });
    }

    /// <summary>An HTTP request answered.</summary>
    public void Request(string endpoint, int status) => _requests.WithLabels(endpoint, status.ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();

    internal void Waiting(int count) => _waiting.Set(count);

    internal void Started(double queueSeconds)
    {
        _running.Inc();
        _queueTime.Observe(queueSeconds);
    }

    internal void Step(int rows) => _batchSize.Observe(rows);

    internal void Token(double? timeToFirstToken)
    {
        _generatedTokens.Inc();
        if (timeToFirstToken is double t) _timeToFirstToken.Observe(t);
    }

    internal void Finished(int promptTokens, int generated, double seconds)
    {
        _running.Dec();
        _promptTokens.Inc(promptTokens);
        if (generated > 0) _requestLatency.Observe(seconds);
    }

    internal void AdapterOperation(string operation, bool succeeded) => _adapterOperations.WithLabels(operation, succeeded ? "ok" : "error").Inc();

    /// <summary>Writes every metric in Prometheus' text exposition format.</summary>
    public Task WriteAsync(Stream output, CancellationToken cancellationToken) => _registry.CollectAndExportAsTextAsync(output, cancellationToken);
}
