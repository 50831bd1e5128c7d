using System.Text.Json.Nodes;

namespace PeftHost.Training.Reports;

/// <summary>training_curves.png: training and evaluation loss by step (left axis) and the learning rate (right axis), drawn with ScottPlot.</summary>
public static class TrainingCurves
{
    /// <summary>The file name in the output folder.</summary>
    public const string FileName = "training_curves.png";

    /// <summary>Draws the curves of a log history into <paramref name="path"/> (PNG, 900 x 500).</summary>
    public static void Write(string path, IReadOnlyList<JsonObject> history)
    {
        var train = history.Where(e => e.ContainsKey("loss") && e.ContainsKey("step")).ToList();
        var eval = history.Where(e => e.ContainsKey("eval_loss") && e.ContainsKey("step")).ToList();
        var plot = new ScottPlot.Plot();
        plot.Title("Training");
        plot.XLabel("step");
        plot.YLabel("loss");
        if (train.Count > 0)
        {
            var line = plot.Add.Scatter(train.Select(Step).ToArray(), train.Select(e => JsonNumber.Get(e["loss"]!)).ToArray());
            line.LegendText = "train loss";
            var rate = plot.Add.Scatter(train.Select(Step).ToArray(), train.Select(e => JsonNumber.GetOrNull(e["learning_rate"]) ?? 0).ToArray());
            rate.LegendText = "learning rate";
            rate.Axes.YAxis = plot.Axes.Right;
            plot.Axes.Right.Label.Text = "learning rate";
        }
        if (eval.Count > 0)
        {
            var line = plot.Add.Scatter(eval.Select(Step).ToArray(), eval.Select(e => JsonNumber.Get(e["eval_loss"]!)).ToArray());
            line.LegendText = "eval loss";
        }
        plot.ShowLegend();
        string temp = path + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp.png";
        plot.SavePng(temp, 900, 500);
        File.Move(temp, path, overwrite: true);
    }

    private static double Step(JsonObject e) => JsonNumber.Get(e["step"]!);
}
