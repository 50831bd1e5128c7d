using PeftHost.Models.Config;
using PeftHost.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Gpt2;

/// <summary><c>transformer</c>: wte, wpe, h.N, ln_f.</summary>
public sealed class Gpt2Model : nn.Module
{
    private nn.Module<Tensor, Tensor> wte;
    private nn.Module<Tensor, Tensor> wpe;
    private readonly ModuleList<Gpt2Block> h = new();
    private nn.Module<Tensor, Tensor> ln_f;
    private readonly double _dropout;

    /// <summary>The stack per config.</summary>
    public Gpt2Model(Gpt2Config c) : base(nameof(Gpt2Model))
    {
        wte = nn.Embedding(c.VocabSize, c.HiddenSize);
        wpe = nn.Embedding(c.MaxPositions, c.HiddenSize);
        for (int i = 0; i < c.NumLayers; i++) h.Add(new Gpt2Block(c, i));
        ln_f = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        _dropout = c.EmbdDropout;
        register_module("wte", wte);
        register_module("wpe", wpe);
        register_module("h", h);
        register_module("ln_f", ln_f);
    }

    /// <summary>The final norm's weight (the base's, when a tuner wraps the norm): the model's dtype and device.</summary>
    internal Tensor Reference => ln_f.parameters().First();

    /// <summary>The token embedding (what the tied head shares).</summary>
    public nn.Module<Tensor, Tensor> Wte => wte;

    /// <summary>Final hidden states [b, s, hidden] for positions start .. start + s.</summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask, KvCache? cache, long start)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(ForwardEmbeddings(wte.forward(inputIds), attentionMask, cache, start));
    }

    /// <summary>Final hidden states [b, s, hidden] from token embeddings [b, s, hidden] (transformers' <c>inputs_embeds</c>; positions are added here).</summary>
    public Tensor ForwardEmbeddings(Tensor inputsEmbeds, Tensor? attentionMask, KvCache? cache, long start)
    {
        using var scope = NewDisposeScope();
        long s = inputsEmbeds.shape[1];
        Tensor positions = torch.arange(start, start + s, dtype: ScalarType.Int64, device: inputsEmbeds.device).unsqueeze(0);
        Tensor hidden = nn.functional.dropout(inputsEmbeds + wpe.forward(positions), _dropout, training);
        Tensor? mask = attentionMask is not null || (start > 0 && s > 1)
            ? AttentionMasks.Build(s, start + s, start, causal: true, null, attentionMask, hidden.dtype, hidden.device)
            : null;
        foreach (Gpt2Block block in h) hidden = block.Forward(hidden, mask, cache, start);
        return scope.MoveToOuter(ln_f.forward(hidden));
    }

    /// <summary>
    /// Final hidden states [b, s, hidden] for a batch whose rows are at different positions: row i's tokens
    /// take the position embeddings of <paramref name="rowStarts"/>[i] .. + s, are written into its own row
    /// of <paramref name="cache"/> and attend to that row's cached positions only.
    /// </summary>
    public Tensor ForwardEmbeddingsRows(Tensor inputsEmbeds, KvCache cache, IReadOnlyList<long> rowStarts)
    {
        using var scope = NewDisposeScope();
        long s = inputsEmbeds.shape[1];
        Tensor starts = torch.tensor(rowStarts.ToArray(), dtype: ScalarType.Int64, device: inputsEmbeds.device);
        Tensor positions = starts.unsqueeze(1) + torch.arange(s, dtype: ScalarType.Int64, device: inputsEmbeds.device).unsqueeze(0);
        Tensor hidden = nn.functional.dropout(inputsEmbeds + wpe.forward(positions), _dropout, training);
        Tensor mask = AttentionMasks.BuildRows(s, rowStarts.Max() + s, starts, null, hidden.dtype, hidden.device);
        using (cache.BeginRows(rowStarts, s))
            foreach (Gpt2Block block in h) hidden = block.Forward(hidden, mask, cache, 0);
        return scope.MoveToOuter(ln_f.forward(hidden));
    }
}
