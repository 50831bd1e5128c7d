using System.Text.Json.Nodes;
using PeftHost.Training.Evaluation;
using Xunit;

namespace PeftHost.Tests.Training;

/// <summary>Corpus BLEU-4 against NLTK's corpus_bleu with method3 smoothing (= sacreBLEU's default "exp"), 0..100.</summary>
public sealed class BleuTests
{
    [Fact]
    public void Corpus_bleu_matches_the_reference_implementation()
    {
        var cases = (JsonArray)JsonNode.Parse(File.ReadAllText(Path.Combine(TrainingCase.Root, "bleu.json")))!;
        foreach (JsonObject c in cases.Cast<JsonObject>())
        {
            var hyps = ((JsonArray)c["hypotheses"]!).Select(h => h!.GetValue<string>()).ToList();
            var refs = ((JsonArray)c["references"]!).Select(h => h!.GetValue<string>()).ToList();
            double expected = c["bleu"]!.GetValue<double>();
            double actual = Bleu.Corpus(hyps, refs);
            Assert.True(Math.Abs(expected - actual) < 1e-9, $"{string.Join(" | ", hyps)}: expected {expected}, got {actual}");
        }
    }

    [Fact]
    public void A_short_hypothesis_pays_the_brevity_penalty()
    {
        // 4 of 4 n-grams right at every order, but 4 tokens against 8: BP = exp(1 - 8/4).
        Assert.Equal(100 * Math.Exp(-1), Bleu.Corpus(["a b c d"], ["a b c d e f g h"]), 9);
    }
}
