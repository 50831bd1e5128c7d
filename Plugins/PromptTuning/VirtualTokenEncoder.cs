using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.PromptTuning;

/// <summary>
/// The module that turns virtual token indices into a prompt, with PEFT's parameter names:
/// <c>embedding</c> alone (PromptEmbedding; and every method's inference form), <c>embedding</c> +
/// <c>transform</c> (PrefixEncoder with projection), or <c>embedding</c> + <c>mlp_head</c> and
/// optionally <c>lstm_head</c> (p-tuning's PromptEncoder).
/// </summary>
internal sealed class VirtualTokenEncoder : nn.Module<Tensor, Tensor>
{
    private readonly Embedding embedding;
    private readonly Sequential? transform;
    private readonly LSTM? lstm_head;
    private readonly Sequential? mlp_head;

    private VirtualTokenEncoder(string name, Embedding embedding, Sequential? transform = null, LSTM? lstmHead = null, Sequential? mlpHead = null) : base(name)
    {
        this.embedding = embedding;
        this.transform = transform;
        lstm_head = lstmHead;
        mlp_head = mlpHead;
        register_module(nameof(embedding), embedding);
        if (transform is not null) register_module(nameof(transform), transform);
        if (lstmHead is not null) register_module(nameof(lstm_head), lstmHead);
        if (mlpHead is not null) register_module(nameof(mlp_head), mlpHead);
    }

    /// <summary>Whether the embedding is the prompt itself (no reparameterisation).</summary>
    public bool IsDirect => transform is null && lstm_head is null && mlp_head is null;

    /// <summary>The embedding table (<c>embedding.weight</c>).</summary>
    public Parameter EmbeddingWeight => embedding.weight!;

    /// <summary>An embedding of <paramref name="tokens"/> x <paramref name="dim"/>, standard-normal initialised.</summary>
    public static VirtualTokenEncoder Embedding(long tokens, long dim) =>
        new("PromptEmbedding", nn.Embedding(tokens, dim));

    /// <summary>PEFT's PrefixEncoder with projection: Embedding(tokens, token_dim), Linear, Tanh, Linear.</summary>
    public static VirtualTokenEncoder Prefix(long tokens, long tokenDim, long hidden, long width) =>
        new("PrefixEncoder", nn.Embedding(tokens, tokenDim),
            transform: nn.Sequential(nn.Linear(tokenDim, hidden), nn.Tanh(), nn.Linear(hidden, width)));

    /// <summary>PEFT's PromptEncoder, MLP head: Linear, ReLU, Linear, ReLU, Linear.</summary>
    public static VirtualTokenEncoder PTuningMlp(long tokens, long tokenDim, long hidden) =>
        new("PromptEncoder", nn.Embedding(tokens, tokenDim),
            mlpHead: nn.Sequential(nn.Linear(tokenDim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, tokenDim)));

    /// <summary>PEFT's PromptEncoder, LSTM head: a bidirectional LSTM, then Linear, ReLU, Linear.</summary>
    public static VirtualTokenEncoder PTuningLstm(long tokens, long tokenDim, long hidden, long layers, double dropout) =>
        new("PromptEncoder", nn.Embedding(tokens, tokenDim),
            lstmHead: nn.LSTM(tokenDim, hidden, numLayers: layers, batchFirst: true, dropout: dropout, bidirectional: true),
            mlpHead: nn.Sequential(nn.Linear(hidden * 2, hidden * 2), nn.ReLU(), nn.Linear(hidden * 2, tokenDim)));

    /// <summary>The prompt for indices of shape [batch, tokens]: [batch, tokens, out].</summary>
    public override Tensor forward(Tensor indices)
    {
        using var scope = NewDisposeScope();
        Tensor x = embedding.forward(indices);
        if (transform is not null) x = transform.forward(x);
        if (lstm_head is not null) x = lstm_head.call(x).Item1;
        if (mlp_head is not null) x = mlp_head.forward(x);
        return scope.MoveToOuter(x);
    }
}
